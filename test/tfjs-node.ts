/**
 * The native TensorFlow backend ("tensorflow") for tests and benchmarks: `@tensorflow/tfjs-node`,
 * installed by `npm run setup:tfjs-node` (scripts/tfjs-node.sh) and deliberately not a
 * package.json dependency (its install script downloads from a host outside the registries).
 *
 * `loadNativeBackend()` imports it, which registers the "tensorflow" backend on the project's
 * one `@tensorflow/tfjs-core` engine, and leaves the current backend as it was. Where it is
 * not installed it returns the reason; in CI (CI=true, or BTTACKLER_REQUIRE_TFJS_NODE=1) it
 * throws instead, so that a CI run can never pass by skipping the native backend.
 *
 *   const missing = await loadNativeBackend();
 *   describe.skipIf(missing !== undefined)("on tensorflow", () => { ... });
 */
import * as tf from "@tensorflow/tfjs";

export const NATIVE_BACKEND = "tensorflow";

/** Whether the native backend must be there (CI): then its absence is an error, not a skip. */
export function nativeBackendRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === "true" || env.CI === "1" || env.BTTACKLER_REQUIRE_TFJS_NODE === "1";
}

let loaded: Promise<string | undefined> | undefined;

async function load(): Promise<string | undefined> {
  const specifier = "@tensorflow/tfjs-node"; // a variable: the package is optional, so the type checker must not resolve it
  const before = tf.getBackend();
  try {
    await import(specifier);
  } catch (err) {
    const reason = `@tensorflow/tfjs-node is not installed or does not load (run 'npm run setup:tfjs-node'): ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`;
    if (nativeBackendRequired()) throw new Error(`${reason}; CI requires the native backend`);
    return reason;
  }
  if (tf.findBackend(NATIVE_BACKEND) === null && !(await tf.setBackend(NATIVE_BACKEND))) {
    throw new Error("@tensorflow/tfjs-node loaded but registered no 'tensorflow' backend on this @tensorflow/tfjs-core (a second copy?)");
  }
  if (before !== undefined) await tf.setBackend(before);
  return undefined;
}

/** Loads tfjs-node once; undefined when the "tensorflow" backend is ready, else why it is not (outside CI only). */
export function loadNativeBackend(): Promise<string | undefined> {
  loaded ??= load();
  return loaded;
}
