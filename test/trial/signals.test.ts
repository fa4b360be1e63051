/** SIGINT/SIGTERM set shouldStop() and let the script finish by itself; handlers are installed once and removed by close(). */
import { describe, expect, it } from "vitest";
import { trial } from "../../src/index.js";
import { runTrain, warnings } from "./child.js";

describe("stop signals", () => {
  it.each(["SIGINT", "SIGTERM"] as const)("%s sets shouldStop; the script stops at its next check, sends its final and exits 0", async (signal) => {
    const run = runTrain({ payloads: [{ step: 0 }], waitForStop: true, final: 0.3 });
    await run.next("training");
    run.child.kill(signal);
    const stopped = await run.next("stopped");
    expect(stopped.reason).toBe(`${signal} received`);
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.events.map((e) => e.event)).toEqual(["open", "verdict", "training", "stopped", "final"]);
    expect(warnings(run.stderr())).toEqual([]);
  });

  it("after a signal, onPayload (the tfjs reporter's hook) answers stop even when the host's verdict does not", async () => {
    const run = runTrain({ payloads: [{ step: 0 }], waitForStop: true, afterStop: { step: 1 } });
    await run.next("training");
    run.child.kill("SIGINT");
    expect(await run.next("onPayload")).toMatchObject({ verdict: { stop: true, reason: "SIGINT received" } });
    expect(await run.exited).toEqual({ code: 0, signal: null });
  });

  it("a second signal ends a script that does not check shouldStop", async () => {
    const run = runTrain({ ignoreStop: true });
    await run.next("training");
    run.child.kill("SIGINT");
    await run.next("stopped");
    run.child.kill("SIGINT");
    expect(await run.exited).toEqual({ code: null, signal: "SIGINT" });
  });

  it("installs one handler per signal however many trials are open, and close() removes them", async () => {
    const before = { int: process.listenerCount("SIGINT"), term: process.listenerCount("SIGTERM") };
    const a = await trial({ env: {} });
    const b = await trial({ env: {} });
    expect(process.listenerCount("SIGINT")).toBe(before.int + 1);
    expect(process.listenerCount("SIGTERM")).toBe(before.term + 1);
    a.close();
    expect(process.listenerCount("SIGINT")).toBe(before.int + 1);
    b.close();
    b.close();
    expect(process.listenerCount("SIGINT")).toBe(before.int);
    expect(process.listenerCount("SIGTERM")).toBe(before.term);
    const c = await trial({ env: {} });
    await c.final(1);
    expect(process.listenerCount("SIGINT")).toBe(before.int);
    const d = await trial({ env: {}, signals: false });
    expect(process.listenerCount("SIGINT")).toBe(before.int);
    d.close();
  });
});
