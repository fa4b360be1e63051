/**
 * Live memory of the service under test, measured without noise from V8's heap sizing:
 * the service runs with `HEAP_PROBE_NODE_ARGS` (heap-probe.cjs preloaded, gc exposed); a
 * sample sends it SIGUSR2 and waits for the line the probe writes after full garbage
 * collections. `HeapProbe.onLine` must see every standard-error line of the process
 * (startService's `onLine` option).
 */
import { fileURLToPath } from "node:url";

export const HEAP_PROBE_NODE_ARGS = ["--expose-gc", "--require", fileURLToPath(new URL("./heap-probe.cjs", import.meta.url))];

export interface HeapSample {
  /** V8 heap in use after full collections: what JavaScript keeps alive. */
  heapUsedMiB: number;
  /** Memory of C++ objects bound to JavaScript ones (Buffers, ArrayBuffers), after the same collections. */
  externalMiB: number;
  /** Resident set size right after the collections. */
  rssMiB: number;
}

const PROBE_TIMEOUT_MS = 15_000;

export class HeapProbe {
  private waiting: ((sample: HeapSample | Error) => void) | undefined;

  /** Feed every standard-error line of the probed process here. */
  readonly onLine = (line: string): void => {
    if (this.waiting === undefined || !line.includes('"msg":"heap probe"')) return;
    const entry = JSON.parse(line) as { error?: string; heap_used_mib?: number; external_mib?: number; rss_mib?: number };
    const settle = this.waiting;
    this.waiting = undefined;
    if (entry.error !== undefined) settle(new Error(`heap probe: ${entry.error}`));
    else settle({ heapUsedMiB: Number(entry.heap_used_mib), externalMiB: Number(entry.external_mib), rssMiB: Number(entry.rss_mib) });
  };

  /** Collects garbage in process `pid` and returns what stays alive; rejects when no answer comes. */
  sample(pid: number): Promise<HeapSample> {
    if (this.waiting !== undefined) return Promise.reject(new Error("heap probe: a sample is already in flight"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`heap probe: no answer from process ${pid} within ${PROBE_TIMEOUT_MS} ms (was it started with HEAP_PROBE_NODE_ARGS?)`));
      }, PROBE_TIMEOUT_MS);
      this.waiting = (result) => {
        clearTimeout(timer);
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      process.kill(pid, "SIGUSR2");
    });
  }
}

/** Live memory that can leak: the V8 heap plus external memory, in MiB. */
export function liveMiB(sample: HeapSample): number {
  return sample.heapUsedMiB + sample.externalMiB;
}
