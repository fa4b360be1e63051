// Loaded into the service by the fuzzer only (`node --expose-gc --require heap-probe.cjs`;
// see heap.ts): on SIGUSR2 it runs full garbage collections and writes one line on
// standard error with what stays alive, so that a leak check compares live memory and not
// V8's heap sizing. Never loaded by the product.
"use strict";

const MIB = 2 ** 20;

process.on("SIGUSR2", () => {
  if (typeof globalThis.gc !== "function") {
    process.stderr.write(`${JSON.stringify({ msg: "heap probe", error: "gc is not exposed: start node with --expose-gc" })}\n`);
    return;
  }
  // more than one full collection: objects freed by finalizers and weak callbacks of the first go in the next
  for (let i = 0; i < 3; i++) globalThis.gc();
  const m = process.memoryUsage();
  process.stderr.write(
    `${JSON.stringify({ msg: "heap probe", heap_used_mib: m.heapUsed / MIB, external_mib: m.external / MIB, rss_mib: m.rss / MIB })}\n`,
  );
});
