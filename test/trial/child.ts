/** Runs test/trial/fixtures/train.mjs (the SDK as a user's script imports it) as a child process. */
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll } from "vitest";
import { onLines } from "../serve-process.js";

export const TRAIN_SCRIPT = fileURLToPath(new URL("./fixtures/train.mjs", import.meta.url));

export interface ChildEvent {
  event: string;
  [key: string]: unknown;
}

export interface TrainChild {
  child: ChildProcess;
  events: ChildEvent[];
  stderr: () => string;
  /** Resolves with the first event named `name` (already seen or still to come). */
  next: (name: string) => Promise<ChildEvent>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();
afterAll(() => {
  for (const child of running) child.kill("SIGKILL");
});

/** Only what the child needs: no BTTACKLER_ or NNI_ variable leaks in from the test's own environment. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("BTTACKLER_") && !k.startsWith("NNI_")) env[k] = v;
  }
  return env;
}

export function runTrain(plan: unknown, env: Record<string, string> = {}, stdio: StdioOptions = ["ignore", "pipe", "pipe"]): TrainChild {
  const child = spawn(process.execPath, [TRAIN_SCRIPT], { env: { ...baseEnv(), ...env, TEST_PLAN: JSON.stringify(plan) }, stdio });
  running.add(child);
  const events: ChildEvent[] = [];
  const waiters: { name: string; resolve: (e: ChildEvent) => void }[] = [];
  let err = "";
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  onLines(child.stdout, (line) => {
    const event = JSON.parse(line) as ChildEvent;
    events.push(event);
    for (const w of waiters.filter((x) => x.name === event.event)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(event);
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  return {
    child,
    events,
    stderr: () => err,
    exited,
    next: (name) => {
      const seen = events.find((e) => e.event === name);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ name, resolve });
        void exited.then(({ code, signal }) => reject(new Error(`child exited (${String(code ?? signal)}) before "${name}"; stderr: ${err}`)));
      });
    },
  };
}

/** The warnings the SDK wrote on standard error (lines starting with "bttackler: "). */
export function warnings(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.startsWith("bttackler: "));
}
