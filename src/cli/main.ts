#!/usr/bin/env node
/** The `bttackler` command line. */
import { readFileSync } from "node:fs";
import { CALIBRATE_HELP, calibrateCommand } from "./calibrate.js";
import { REPLAY_HELP, replayCommand } from "./replay.js";
import { REPORT_HELP, reportCommand } from "./report.js";
import { SERVE_HELP, serveCommand } from "./serve.js";
import { UsageError } from "./usage.js";

const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

const HELP = `bttackler ${VERSION} — diagnosis-based early stopping for hyperparameter optimization

Usage: bttackler <command> [options]

Commands:
  replay [--config FILE] [FILE]   diagnose a JSON-lines event stream, one verdict line per payload
  serve [--port P] [--db PATH]    run the diagnosis service (JSON-RPC 2.0 over WebSocket or --stdio)
  report --db FILE [--out FILE]   write an HTML page of a service database's studies (curves, symptoms)
  calibrate [--budget R] TRACES   choose rule thresholds from recorded traces within a false-kill budget

Options:
  -h, --help       show this help (bttackler <command> --help for a command)
  -v, --version    print the version

Docs: docs/payload.md (what trials report), docs/symptoms.md (what is diagnosed),
docs/configuration.md (thresholds and switches), docs/protocol.md (the service),
docs/report.md (the report page).
`;

interface Command {
  help: string;
  run(argv: string[]): Promise<number>;
}

const io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
const COMMANDS: Record<string, Command> = {
  replay: { help: REPLAY_HELP, run: (argv) => replayCommand(argv, io) },
  serve: { help: SERVE_HELP, run: (argv) => serveCommand(argv, VERSION) },
  report: { help: REPORT_HELP, run: (argv) => reportCommand(argv, io) },
  calibrate: { help: CALIBRATE_HELP, run: (argv) => calibrateCommand(argv, io) },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    const topic = name === "help" && rest[0] !== undefined ? COMMANDS[rest[0]] : undefined;
    if (name === "help" && rest[0] !== undefined && topic === undefined) throw new UsageError(`unknown command ${JSON.stringify(rest[0])}; run bttackler --help`);
    process.stdout.write(topic ? topic.help : HELP);
    return 0;
  }
  if (name === "-v" || name === "--version") {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) throw new UsageError(`unknown command ${JSON.stringify(name)}; run bttackler --help`);
  try {
    return await command.run(rest);
  } catch (err) {
    // parseArgs' own messages (unknown option, missing value) do not say where to look
    const code = (err as { code?: string }).code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) {
      throw new UsageError(`${name}: ${(err as Error).message} (see bttackler ${name} --help)`);
    }
    throw err;
  }
}

// A reader that goes away (e.g. `| head`) is not an error of ours.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    process.stderr.write(`bttackler: ${err instanceof Error ? err.message : String(err)}\n`);
    if (!usage && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = usage ? 2 : 1;
  },
);
