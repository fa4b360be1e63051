/** Runs the built CLI (dist/cli/main.js; npm test builds first) as a child process: shared by the CLI tests. */
import { spawn } from "node:child_process";
import { CLI } from "../service/harness.js";

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `bttackler ...args` with `input` on its standard input (closed after it); resolves when it has exited. */
export function runCli(args: string[], input = ""): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args]);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}
