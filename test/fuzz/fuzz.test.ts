/**
 * The fuzzer in a few thousand frames against the real service (dist/, so `npm run build`
 * first), and its checker on its own: a missing reply, a reply to a notification, a
 * malformed reply, a wrong id or code must each be reported, so that the run can fail.
 */
import { describe, expect, it } from "vitest";
import { FAMILIES } from "./frames.js";
import { liveMiB } from "./heap.js";
import { ReplyLedger, type ReplyTally } from "./ledger.js";
import { expectationOf } from "./oracle.js";
import { runFuzz } from "./run.js";

function ledger(): { tally: ReplyTally; ledger: ReplyLedger } {
  const tally: ReplyTally = { byCode: new Map(), failures: [] };
  return { tally, ledger: new ReplyLedger(tally) };
}

const frame = { index: 0, family: "valid" as const };

describe("fuzz checker", () => {
  it("reads what each frame must get back", () => {
    expect(expectationOf("{")).toEqual({ kind: "single", reply: { id: "null", code: "parse" } });
    expect(expectationOf('{"jsonrpc":"2.0","method":"service.health"}')).toEqual({ kind: "none" });
    expect(expectationOf('{"jsonrpc":"2.0","id":1e400,"method":"x"}')).toEqual({ kind: "single", reply: { id: "null", code: "any" } });
    expect(expectationOf('{"jsonrpc":"1.0","id":"a","method":"x"}')).toEqual({ kind: "single", reply: { id: '"a"', code: "invalid" } });
    expect(expectationOf('[{"jsonrpc":"2.0","method":"x"},1,{"jsonrpc":"2.0","id":NaN,"method":"x"}]')).toEqual({
      kind: "batch",
      replies: [
        { id: "null", code: "invalid" },
        { id: "null", code: "any" },
      ],
    });
    expect(expectationOf(`[${Array(1001).fill("1").join(",")}]`)).toEqual({ kind: "single", reply: { id: "null", code: "invalid" } });
  });

  it("accepts exactly one well-formed reply per request", () => {
    const { tally, ledger: l } = ledger();
    l.expect(frame, expectationOf('{"jsonrpc":"2.0","id":7,"method":"x"}'));
    l.receive('{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"Method not found"}}');
    expect(tally.failures).toEqual([]);
    expect(l.pending).toBe(0);
  });

  it.each([
    ["a second reply", ['{"jsonrpc":"2.0","id":7,"result":{}}', '{"jsonrpc":"2.0","id":7,"result":{}}'], /no request waits/],
    ["a reply with both result and error", ['{"jsonrpc":"2.0","id":7,"result":1,"error":{"code":1,"message":"m"}}'], /exactly one of result and error/],
    ["a non-integer code", ['{"jsonrpc":"2.0","id":7,"error":{"code":1.5,"message":"m"}}'], /not an integer/],
    ["a reply that is not strict JSON", ['{"jsonrpc":"2.0","id":7,"result":NaN}'], /not strict JSON/],
    ["an internal error", ['{"jsonrpc":"2.0","id":7,"error":{"code":-32603,"message":"internal error"}}'], /internal error/],
    ["a reply with another id", ['{"jsonrpc":"2.0","id":8,"result":{}}'], /no request waits/],
  ])("reports %s", (_what, replies, problem) => {
    const { tally, ledger: l } = ledger();
    l.expect(frame, expectationOf('{"jsonrpc":"2.0","id":7,"method":"x"}'));
    for (const reply of replies) l.receive(reply);
    expect(tally.failures.map((f) => f.problem).join("\n")).toMatch(problem);
  });

  it("reports a reply to a notification, and a request left without reply", async () => {
    const { tally, ledger: l } = ledger();
    l.expect(frame, expectationOf('{"jsonrpc":"2.0","method":"x"}'));
    l.receive('{"jsonrpc":"2.0","id":null,"result":{}}');
    expect(tally.failures[0]?.problem).toMatch(/no request waits/);
    l.expect(frame, expectationOf('{"jsonrpc":"2.0","id":1,"method":"x"}'));
    await expect(l.whenPendingBelow(1, 50)).rejects.toThrow(/no reply within 50 ms/);
  });
});

describe("fuzz run", () => {
  it("sends 3,000 frames of every family to the real service without breaking a guarantee", async () => {
    const summary = await runFuzz({ frames: 3000, seed: 3, seconds: 90, connections: 3, maxLiveGrowthMiB: 16, maxRssGrowthMiB: 64, log: () => {} });
    expect(summary.failures).toEqual([]);
    expect(summary.framesSent).toBe(3000);
    for (const family of FAMILIES.filter((f) => f !== "oversized" && f !== "protocol-violations")) expect(summary.framesByFamily[family], family).toBeGreaterThan(0);
    const closes = Object.values(summary.closesByCode).reduce((a, b) => a + b, 0);
    expect(closes).toBe(summary.framesByFamily.oversized + summary.framesByFamily["protocol-violations"]);
    expect(closes).toBeGreaterThan(0);
    for (const code of ["ok", "-32700", "-32600", "-32601", "-32602", "-32003"]) expect(summary.repliesByCode[code], code).toBeGreaterThan(0);
    expect(summary.repliesByCode["-32603"]).toBeUndefined();
    expect(summary.healthChecks).toBeGreaterThan(0);
    expect(Number.isFinite(liveMiB(summary.memoryStart)) && Number.isFinite(liveMiB(summary.memoryEnd))).toBe(true);
    expect(liveMiB(summary.memoryEnd) - liveMiB(summary.memoryStart)).toBeLessThan(16);
  }, 120_000);
});
