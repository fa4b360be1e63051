/** The fuzzer's summary as text: frames per family, replies per code, duration, memory, failures. */
import { FAMILIES } from "./frames.js";
import { liveMiB } from "./heap.js";
import type { FuzzSummary } from "./run.js";

export function formatSummary(s: FuzzSummary): string {
  const lines = [
    `bttackler fuzz: seed ${s.options.seed}, ${s.framesSent} frames over ${s.options.connections} ws + 2 raw connections (and their replacements) in ${s.durationS.toFixed(1)} s = ${Math.round(s.framesSent / s.durationS)} frames/s${s.stoppedByTimeLimit ? " (stopped by the time limit)" : ""}`,
    "frames by family:",
    ...FAMILIES.map((f) => `  ${f.padEnd(18)} ${String(s.framesByFamily[f]).padStart(7)}`),
    "reply objects by code (batch members included):",
    ...Object.entries(s.repliesByCode).map(([code, n]) => `  ${code.padEnd(18)} ${String(n).padStart(7)}`),
    `connections closed by the service as expected, by code: ${JSON.stringify(s.closesByCode)}; service.health answered ${s.healthChecks} time(s) during the run, and at the end`,
    `service live memory after full GC (V8 heap used + external): ${liveMiB(s.memoryStart).toFixed(1)} MiB after warm-up, ${liveMiB(s.memoryEnd).toFixed(1)} MiB at the end (growth ${(liveMiB(s.memoryEnd) - liveMiB(s.memoryStart)).toFixed(1)} MiB, limit ${s.options.maxLiveGrowthMiB})`,
    `service RSS after full GC: ${s.memoryStart.rssMiB.toFixed(1)} MiB after warm-up, ${s.memoryEnd.rssMiB.toFixed(1)} MiB at the end (growth ${(s.memoryEnd.rssMiB - s.memoryStart.rssMiB).toFixed(1)} MiB, limit ${s.options.maxRssGrowthMiB}), peak during the run ${s.rssPeakMiB.toFixed(1)} MiB`,
  ];
  if (s.failures.length === 0) {
    lines.push("OK: every request with an id got exactly one well-formed reply, no notification was answered, the service stayed up and its memory stable");
  } else {
    lines.push(`FAILED: ${s.failures.length} failure(s); the first ones:`);
    for (const f of s.failures.slice(0, 20)) {
      const frame = f.index === undefined ? "" : `frame ${f.index} (${f.family ?? "?"}): `;
      lines.push(`  ${frame}${f.problem}${f.reply === undefined ? "" : `\n    reply: ${f.reply}`}`);
    }
  }
  return lines.join("\n");
}
