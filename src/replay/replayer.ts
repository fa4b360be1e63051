/**
 * The replay protocol without I/O: one JSON line in, at most one JSON line out.
 *
 * Input lines (replay-event.v1):
 *   {"study": "s", "trial": "t", "payload": {...payload.v1}}
 *   {"study": "s", "trial": "t", "end": {"state": "complete" | "pruned" | "failed"}}
 * Output, for every payload line:
 *   {"study", "trial", "step", "stop", "protected", "symptoms", ["reason", "stopped_at"]}
 * and for every line that cannot be processed (bad JSON, schema violation, step out
 * of order, report after end, end of a study or trial that reported no step): {"line", "error", ["study", "trial", "step"]} — so a
 * driver that writes one payload and waits for one line never waits forever.
 * Each study has its own engine, hence its own cohort.
 */
import { DiagnosisEngine } from "../diagnosis/engine.js";
import { EngineInputError } from "../diagnosis/errors.js";
import type { StudyConfig, Verdict } from "../diagnosis/types.js";
import { JsonSyntaxError, parseJson } from "../schema/json.js";
import { ValidationError, validateReplayEvent } from "../schema/validate.js";

export interface ReplayVerdictLine extends Omit<Verdict, "trial"> {
  study: string;
  trial: string;
}

export interface ReplayErrorLine {
  line: number;
  error: string;
  study?: string;
  trial?: string;
  step?: number;
}

export interface ReplayResult {
  /** The line to write to stdout, if any (end events produce none). */
  output?: ReplayVerdictLine | ReplayErrorLine;
  /** Set when the line could not be processed. */
  error?: string;
}

export class Replayer {
  private readonly engines = new Map<string, DiagnosisEngine>();
  private lineNo = 0;

  constructor(private readonly config: StudyConfig) {}

  /** Processes the next input line (numbered from 1). Blank lines are skipped but counted. */
  handleLine(text: string): ReplayResult {
    const line = ++this.lineNo;
    if (text.trim() === "") return {};
    let context: { study?: string; trial?: string; step?: number } = {};
    try {
      const raw = parseJson(text);
      context = contextOf(raw);
      const event = validateReplayEvent(raw);
      if ("end" in event) {
        const engine = this.engines.get(event.study);
        if (engine === undefined) throw new EngineInputError(`unknown study ${event.study}: it reported no step, so trial ${event.trial} cannot end`);
        engine.end(event.trial, event.end.state);
        return {};
      }
      const engine = this.engine(event.study);
      const { trial: _t, ...verdict } = engine.report(event.trial, event.payload);
      return { output: { study: event.study, trial: event.trial, ...verdict } };
    } catch (err) {
      if (!(err instanceof JsonSyntaxError || err instanceof ValidationError || err instanceof EngineInputError)) throw err;
      return this.failure(line, err.message, context);
    }
  }

  /** Reports an input line that was refused before parsing (e.g. too long). */
  rejectLine(reason: string): ReplayResult {
    return this.failure(++this.lineNo, reason, {});
  }

  private failure(line: number, error: string, context: { study?: string; trial?: string; step?: number }): ReplayResult {
    return { output: { line, error, ...context }, error: `line ${line}: ${error}` };
  }

  private engine(study: string): DiagnosisEngine {
    let engine = this.engines.get(study);
    if (engine === undefined) {
      engine = new DiagnosisEngine(this.config);
      this.engines.set(study, engine);
    }
    return engine;
  }
}

/** Study, trial and step of a parsed line, where they have the right types, to label an error. */
function contextOf(raw: unknown): { study?: string; trial?: string; step?: number } {
  if (raw === null || typeof raw !== "object") return {};
  const r = raw as Record<string, unknown>;
  const payload = r.payload as Record<string, unknown> | undefined;
  return {
    ...(typeof r.study === "string" ? { study: r.study } : {}),
    ...(typeof r.trial === "string" ? { trial: r.trial } : {}),
    ...(payload && typeof payload === "object" && typeof payload.step === "number" ? { step: payload.step } : {}),
  };
}
