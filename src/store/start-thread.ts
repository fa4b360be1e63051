/**
 * Starts a worker thread from a module of this folder: the compiled `.js` next to the caller
 * (dist/, the installed package), or, when the caller runs from the sources (vitest, tsx), the
 * `.ts` module through tsx, a development dependency that is there whenever the sources run.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Worker, type WorkerOptions } from "node:worker_threads";

/** `new Worker` on `./<name>.js` relative to `base` (the caller's import.meta.url), or on `./<name>.ts` from the sources. */
export function startThread(base: string, name: string, options: WorkerOptions): Worker {
  const built = new URL(`./${name}.js`, base);
  if (existsSync(fileURLToPath(built))) return new Worker(built, options);
  const source = fileURLToPath(new URL(`./${name}.ts`, base));
  const tsx = createRequire(base).resolve("tsx/cjs/api");
  // the loader's one line: tsx compiles the module and what it imports (the program is the .ts module, not this string)
  return new Worker(`require(${JSON.stringify(tsx)}).require(${JSON.stringify(source)}, ${JSON.stringify(source)});`, { ...options, eval: true });
}
