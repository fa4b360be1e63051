/**
 * The studies of a service: one diagnosis engine per study, every accepted event
 * written to the store before it is acknowledged, and the engines rebuilt from the
 * store at start-up by replaying the events in arrival order — the engine is
 * deterministic, so the rebuilt cohorts, streaks and stops equal those of a service
 * that never stopped.
 */
import { JSONRPCErrorException } from "json-rpc-2.0";
import { DiagnosisEngine, type TrialSummary } from "../diagnosis/engine.js";
import { EngineInputError } from "../diagnosis/errors.js";
import type { PayloadV1, StudyConfig, TrialEndState, Verdict } from "../diagnosis/types.js";
import { resolveConfig, ValidationError } from "../schema/validate.js";
import type { EventStore, StoredEvent } from "../store/stored-types.js";
import { storedPayload } from "../store/stored-payload.js";
import { RpcErrorCode } from "./errors.js";
import type { Log } from "./log.js";

interface Study {
  engine: DiagnosisEngine;
  config: StudyConfig;
  created_at: string;
}

export interface StudyInfo {
  study: string;
  created_at: string;
  trials: number;
  stopped: number;
}

/** A report's outcome: the verdict, and its JSON text (serialised once, for the store and the reply). */
export interface Reported {
  verdict: Verdict;
  verdictJson: string;
  duplicate: boolean;
}

export class StudyRegistry {
  private readonly studies = new Map<string, Study>();
  /** Events the engine took but the store failed to commit, by study/trial/step (or study/trial/end): a re-delivery stores them again. */
  private readonly unstored = new Map<string, StoredEvent>();

  constructor(
    private readonly store: EventStore,
    private readonly log: Log,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.rebuild();
  }

  /** Creates a study, or reopens it. A different config is refused once the study has events. */
  async open(study: string, rawConfig?: unknown): Promise<{ study: string; config: StudyConfig; created: boolean }> {
    const existing = this.studies.get(study);
    let config: StudyConfig | undefined;
    if (rawConfig !== undefined) {
      try {
        config = resolveConfig(rawConfig, "params.config");
      } catch (err) {
        if (err instanceof ValidationError) throw new JSONRPCErrorException(err.message, RpcErrorCode.InvalidParams, { issues: err.issues });
        throw err;
      }
    }
    if (existing !== undefined) {
      if (config === undefined || JSON.stringify(config) === JSON.stringify(existing.config)) {
        return { study, config: existing.config, created: false };
      }
      if (existing.engine.trialCount > 0) {
        throw new JSONRPCErrorException(
          `study ${study} already has events diagnosed with another config; open it without a config or use a new study name`,
          RpcErrorCode.ConfigConflict,
        );
      }
    }
    const resolved = config ?? resolveConfig({});
    const created_at = existing?.created_at ?? this.now().toISOString();
    const entry: Study = { engine: new DiagnosisEngine(resolved), config: resolved, created_at };
    this.studies.set(study, entry);
    if (existing === undefined) this.log.info("study opened", { study });
    try {
      await this.committed(this.store.saveStudy(study, resolved, created_at));
    } catch (err) {
      // a new study that was not stored is forgotten, so that the next open or report stores it (its events need its row)
      if (existing === undefined && this.studies.get(study) === entry) this.studies.delete(study);
      throw err;
    }
    return { study, config: resolved, created: existing === undefined };
  }

  /**
   * Diagnoses and stores a payload; resolves once it is committed. A re-delivered step
   * answers its stored verdict. `request` is the JSON-RPC request text that carried the
   * payload at params.payload, when there was exactly one: it is stored as it came.
   *
   * When the study exists, the engine takes the payload before this returns, and nothing
   * that waits for the commit refers to the payload: the caller may let go of it at once,
   * so that a payload is garbage while its commit is pending, not a survivor.
   */
  report(study: string, trial: string, payload: PayloadV1, request?: string): Promise<Reported> {
    const s = this.studies.get(study);
    if (s === undefined) return this.studyFor(study).then(() => this.report(study, trial, payload, request));
    const step = payload.step;
    const duplicate = s.engine.has(trial, step);
    let verdict: Verdict;
    try {
      verdict = s.engine.report(trial, payload);
    } catch (err) {
      return Promise.reject(err instanceof EngineInputError ? new JSONRPCErrorException(err.message, RpcErrorCode.RejectedEvent) : err);
    }
    const key = `${study}\u0000${trial}\u0000${step}`;
    const verdictJson = JSON.stringify(verdict);
    let stored: Promise<void>;
    if (duplicate) {
      const retry = this.unstored.get(key);
      stored = retry === undefined ? this.committed(this.store.whenCommitted()) : this.persist(key, retry);
    } else {
      if (verdict.stop && verdict.stopped_at === step) {
        this.log.info("trial stopped", {
          study,
          trial,
          step,
          symptoms: [...new Set(verdict.symptoms.filter((x) => x.action === "stop").map((x) => x.code))],
          reason: verdict.reason,
        });
      }
      const body = request ?? JSON.stringify(payload);
      const format = request === undefined ? "payload" : "request";
      stored = this.persist(key, { study, trial, kind: "payload", step, body, format, verdict: verdictJson });
    }
    return stored.then(() => ({ verdict, verdictJson, duplicate }));
  }

  /** Ends a trial the study knows; an unknown study (-32001) or trial (-32002) is refused and nothing is stored. */
  async end(study: string, trial: string, state: TrialEndState): Promise<void> {
    const s = this.knownTrial(study, trial);
    const first = s.engine.end(trial, state);
    const key = `${study}\u0000${trial}\u0000end`;
    const event: StoredEvent | undefined = first ? { study, trial, kind: "end", state } : this.unstored.get(key);
    if (event !== undefined) await this.persist(key, event);
    else await this.committed(this.store.whenCommitted());
  }

  assess(study: string, trial: string, step?: number): Verdict {
    const verdict = this.knownTrial(study, trial).engine.verdict(trial, step);
    if (verdict === undefined) {
      const at = step === undefined ? "" : ` at step ${step}`;
      throw new JSONRPCErrorException(`trial ${trial} of study ${study} has no verdict${at}`, RpcErrorCode.UnknownTrial);
    }
    return verdict;
  }

  history(study: string, trial: string): Verdict[] {
    return this.knownTrial(study, trial).engine.history(trial);
  }

  trials(study: string): TrialSummary[] {
    return this.known(study).engine.trialSummaries();
  }

  list(): StudyInfo[] {
    return [...this.studies].map(([study, s]) => {
      const trials = s.engine.trialSummaries();
      return { study, created_at: s.created_at, trials: trials.length, stopped: trials.filter((t) => t.stopped_at !== undefined).length };
    });
  }

  get size(): number {
    return this.studies.size;
  }

  private known(study: string): Study {
    const s = this.studies.get(study);
    if (s === undefined) throw new JSONRPCErrorException(`unknown study ${study}`, RpcErrorCode.UnknownStudy);
    return s;
  }

  /**
   * The study of a method that names a trial but does not create it (assess, history, end):
   * the one rule of docs/protocol.md — an unknown study is -32001, a trial the study never had a report of -32002.
   */
  private knownTrial(study: string, trial: string): Study {
    const s = this.known(study);
    if (!s.engine.knows(trial)) throw new JSONRPCErrorException(`unknown trial ${trial} of study ${study}`, RpcErrorCode.UnknownTrial);
    return s;
  }

  /** A study reported to without study.open is created with the default config. */
  private async studyFor(study: string): Promise<Study> {
    const opening = this.open(study);
    const s = this.studies.get(study) as Study;
    await opening;
    return s;
  }

  /** Stores an event; when that fails, keeps it so that a re-delivery (of the step, or of the end) can store it. */
  private async persist(key: string, event: StoredEvent): Promise<void> {
    try {
      await this.committed(this.store.append(event));
      this.unstored.delete(key);
    } catch (err) {
      this.unstored.set(key, event);
      throw err;
    }
  }

  private async committed(write: Promise<void>): Promise<void> {
    try {
      await write;
    } catch (err) {
      this.log.error("storage failure", { error: (err as Error).message });
      throw new JSONRPCErrorException(`the event could not be stored: ${(err as Error).message}`, RpcErrorCode.StorageFailure);
    }
  }

  private rebuild(): void {
    for (const { study, config, created_at } of this.store.studies()) {
      const engine = new DiagnosisEngine(config);
      let payloads = 0;
      let mismatches = 0;
      for (const e of this.store.events(study)) {
        if (e.kind === "end") {
          // an end stored for a trial without reports (accepted by releases before the rule) ends nothing
          if (engine.knows(e.trial)) engine.end(e.trial, e.state);
          continue;
        }
        payloads++;
        const verdict = engine.report(e.trial, storedPayload(e.body, e.format));
        if (JSON.stringify(verdict) !== e.verdict) mismatches++;
      }
      this.studies.set(study, { engine, config, created_at });
      this.log.info("study restored", { study, payloads, trials: engine.trialCount });
      if (mismatches > 0) {
        this.log.warn("restored verdicts differ from the stored ones (engine changed since they were answered)", { study, mismatches });
      }
    }
  }
}
