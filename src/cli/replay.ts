/** `bttackler replay`: diagnoses a JSON-lines event stream, one verdict line per payload, flushed at once. */
import { createReadStream, readFileSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { parseArgs } from "node:util";
import { Replayer } from "../replay/replayer.js";
import { parseJson } from "../schema/json.js";
import { resolveConfig } from "../schema/validate.js";
import { readLines } from "../io/lines.js";
import { UsageError } from "./usage.js";

export const REPLAY_HELP = `Usage: bttackler replay [--config FILE] [--max-line-bytes N] [FILE]

Reads JSON lines from FILE (or standard input when FILE is absent or "-"):
  {"study": "s", "trial": "t", "payload": {...}}            an indicator payload (payload.v1)
  {"study": "s", "trial": "t", "end": {"state": "complete"}}  a trial's end (complete|pruned|failed)
and writes one JSON line per payload to standard output, flushed at once:
  {"study", "trial", "step", "stop", "protected", "symptoms", "reason"?, "stopped_at"?}
A line that cannot be processed gets {"line", "error", ...} on standard output and a
message with its line number on standard error; processing goes on and the exit code is 1.
NaN, Infinity and -Infinity tokens are accepted as non-finite values.

Options:
  --config FILE         study configuration (config.v1 JSON); defaults for anything missing
  --max-line-bytes N    longest accepted input line, in characters (default 16777216)
  -h, --help            show this help
`;

export interface ReplayStreams {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

/** Runs the replay command; resolves to the exit code. */
export async function replayCommand(argv: string[], io: ReplayStreams): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string" },
      "max-line-bytes": { type: "string", default: String(16 * 1024 * 1024) },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    io.stdout.write(REPLAY_HELP);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`replay takes at most one FILE, got ${positionals.length}`);
  const maxLine = Number(values["max-line-bytes"]);
  if (!Number.isInteger(maxLine) || maxLine < 1) {
    throw new UsageError(`--max-line-bytes must be a positive integer, got ${JSON.stringify(values["max-line-bytes"])}`);
  }
  const config = values.config === undefined ? resolveConfig({}) : loadConfig(values.config);
  const file = positionals[0];
  const input = file === undefined || file === "-" ? io.stdin : createReadStream(file);

  const replayer = new Replayer(config);
  let failures = 0;
  const handle = (result: ReturnType<Replayer["handleLine"]>): void => {
    if (result.output) io.stdout.write(`${JSON.stringify(result.output)}\n`);
    if (result.error) {
      failures++;
      io.stderr.write(`bttackler replay: ${result.error}\n`);
    }
  };
  try {
    await readLines(input, maxLine, {
      line: (text) => handle(replayer.handleLine(text)),
      tooLong: (length) => handle(replayer.rejectLine(`line of ${length} characters exceeds --max-line-bytes ${maxLine}`)),
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === "string" && code.startsWith("E")) throw new UsageError(`cannot read ${file ?? "standard input"}: ${(err as Error).message}`);
    throw err;
  }
  return failures > 0 ? 1 : 0;
}

function loadConfig(path: string): ReturnType<typeof resolveConfig> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read --config ${path}: ${(err as Error).message}`);
  }
  try {
    return resolveConfig(parseJson(text), "config");
  } catch (err) {
    throw new UsageError(`--config ${path}: ${(err as Error).message}`);
  }
}
