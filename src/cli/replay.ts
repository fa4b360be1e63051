/** `bttackler replay`: diagnoses a JSON-lines event stream, one verdict line per payload, flushed at once. */
import { createReadStream, statSync, type ReadStream } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { parseArgs } from "node:util";
import { Replayer } from "../replay/replayer.js";
import { resolveConfig } from "../schema/validate.js";
import { readLines } from "../io/lines.js";
import { loadConfigFile } from "./config-file.js";
import { createProgress, type Progress, type ProgressStream } from "./progress.js";
import { UsageError } from "./usage.js";

export const REPLAY_HELP = `Usage: bttackler replay [--config FILE] [--max-line-bytes N] [FILE]

Reads JSON lines from FILE (or standard input when FILE is absent or "-"):
  {"study": "s", "trial": "t", "payload": {...}}            an indicator payload (payload.v1)
  {"study": "s", "trial": "t", "end": {"state": "complete"}}  a trial's end (complete|pruned|failed)
and writes one JSON line per payload to standard output, flushed at once:
  {"study", "trial", "step", "stop", "protected", "symptoms", "reason"?, "stopped_at"?}
A line that cannot be processed (bad JSON, a schema violation, a step out of order, a payload
after its trial's end, an end of a trial that reported no payload) gets {"line", "error", ...} on standard output and a
message with its line number on standard error; processing goes on and the exit code is 1.
NaN, Infinity and -Infinity tokens are accepted as non-finite values.
A FILE larger than 1 MiB shows a progress bar on standard error when standard error is a
terminal and standard output is not (e.g. redirected to a file).

Options:
  --config FILE         study configuration (config.v1 JSON); defaults for anything missing
  --max-line-bytes N    longest accepted input line, in bytes of UTF-8 (default 16777216)
  -h, --help            show this help
`;

export interface ReplayStreams {
  stdin: Readable;
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & ProgressStream;
}

/** Files larger than this show a progress bar (when standard error is a terminal). */
export const REPLAY_PROGRESS_MIN_BYTES = 1024 * 1024;

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
  const config = values.config === undefined ? resolveConfig({}) : loadConfigFile(values.config);
  const file = positionals[0];
  const input = file === undefined || file === "-" ? io.stdin : createReadStream(file);
  const progress = file === undefined || file === "-" ? undefined : fileProgress(file, input as ReadStream, io);

  const replayer = new Replayer(config);
  let failures = 0;
  const handle = (result: ReturnType<Replayer["handleLine"]>): void => {
    if (result.output) io.stdout.write(`${JSON.stringify(result.output)}\n`);
    if (result.error) {
      failures++;
      const message = `bttackler replay: ${result.error}\n`;
      if (progress) progress.log(message);
      else io.stderr.write(message);
    }
  };
  try {
    await readLines(input, maxLine, {
      line: (text) => handle(replayer.handleLine(text)),
      tooLong: (length) => handle(replayer.rejectLine(`line of ${length} bytes exceeds --max-line-bytes ${maxLine}`)),
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === "string" && code.startsWith("E")) throw new UsageError(`cannot read ${file ?? "standard input"}: ${(err as Error).message}`);
    throw err;
  } finally {
    progress?.finish();
  }
  return failures > 0 ? 1 : 0;
}

/**
 * The progress of reading a large FILE, polled from the stream's byte count (the reader is
 * left alone), or undefined when there is nothing to show: a small or unreadable file,
 * standard error not a terminal, or standard output on the same terminal (its verdict
 * lines would tear the bar).
 */
function fileProgress(file: string, input: ReadStream, io: ReplayStreams): Progress | undefined {
  if (io.stderr.isTTY !== true || io.stdout.isTTY === true) return undefined;
  let total: number;
  try {
    total = statSync(file).size;
  } catch {
    return undefined; // the read reports it
  }
  if (total <= REPLAY_PROGRESS_MIN_BYTES) return undefined;
  const progress = createProgress(io.stderr, { label: "replay", total, unit: "bytes" });
  progress.update(0);
  const timer = setInterval(() => progress.update(input.bytesRead), 100);
  timer.unref();
  return {
    update: (done) => progress.update(done),
    log: (text) => progress.log(text),
    finish: () => {
      clearInterval(timer);
      progress.finish();
    },
  };
}

