/**
 * The Optuna relay: the test is the Python parent. It spawns the user's script with an
 * extra socket pair as fd 3 (what `pass_fds` gives a Python child), reads the JSON lines
 * the trial writes and answers verdict lines.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { onLines } from "../serve-process.js";
import { runTrain, warnings, type TrainChild } from "./child.js";

const STDIO = ["ignore", "pipe", "pipe", "pipe"] as const;
const PARAMS = '{"lr": 0.05, "optimizer": "sgd", "units": 128}';

/** The parent's end of the relay: lines in, lines out. */
function relay(run: TrainChild): { lines: string[]; nextLine: () => Promise<string>; send: (line: string) => void; ended: Promise<void>; socket: Socket } {
  const socket = run.child.stdio[3] as Socket;
  const lines: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  let read = 0;
  socket.setEncoding("utf8");
  onLines(socket, (line) => {
    lines.push(line);
    waiters.shift()?.(lines[read++] as string);
  });
  socket.on("error", () => {});
  const ended = new Promise<void>((resolve) => socket.on("end", () => resolve()));
  return {
    lines,
    socket,
    ended,
    send: (line) => socket.write(`${line}\n`),
    nextLine: () => (read < lines.length ? Promise.resolve(lines[read++] as string) : new Promise((resolve) => waiters.push(resolve))),
  };
}

function spawnRelayed(plan: unknown, env: Record<string, string> = {}): TrainChild {
  return runTrain(plan, { BTTACKLER_RELAY_FD: "3", BTTACKLER_PARAMS: PARAMS, BTTACKLER_TRIAL: "optuna-4", ...env }, [...STDIO]);
}

const healthy = (step: number) => ({ step, max_steps: 10, metrics: { train_loss: 2 - step * 0.1, val_loss: 2.1 - step * 0.1 } });

describe("Optuna relay (JSON lines over an inherited socket)", () => {
  it("sends one report line per report, waits for its verdict, stops on stop=true, sends final, then EOF", async () => {
    const run = spawnRelayed({ payloads: [healthy(0), { step: 1, metrics: { train_loss: null }, non_finite: true }, healthy(2), healthy(3)], final: 0.42 });
    const parent = relay(run);

    expect(JSON.parse(await parent.nextLine())).toEqual({ type: "report", payload: healthy(0) });
    parent.send('{"type":"verdict","stop":false}');
    // a NaN the script passed arrives as null (payload v1), the line is compact JSON
    expect(await parent.nextLine()).toBe('{"type":"report","payload":{"step":1,"metrics":{"train_loss":null},"non_finite":true}}');
    parent.send(JSON.stringify({ type: "verdict", stop: false, extra: "ignored" }));
    expect(JSON.parse(await parent.nextLine())).toEqual({ type: "report", payload: healthy(2) });
    parent.send('{"type":"verdict","stop":true,"reason":"NF non_finite_metric: metric train_loss is not finite"}');
    expect(await parent.nextLine()).toBe('{"type":"final","value":0.42}');
    await parent.ended;

    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.events[0]).toMatchObject({ host: "optuna", id: "optuna-4", params: { lr: 0.05, optimizer: "sgd", units: 128 } });
    expect(run.events.filter((e) => e.event === "verdict").map((e) => [e.verdict, e.shouldStop])).toEqual([
      [{ stop: false }, false],
      [{ stop: false }, false],
      [{ stop: true, reason: "NF non_finite_metric: metric train_loss is not finite" }, true],
    ]);
    expect(parent.lines.length).toBe(4);
    expect(warnings(run.stderr())).toEqual([]);
  });

  it("a bad verdict line breaks the relay: stop=false now and for every later report, one warning, exit 0", async () => {
    const run = spawnRelayed({ payloads: [healthy(0), healthy(1), healthy(2)], final: 0.1 });
    const parent = relay(run);
    await parent.nextLine();
    parent.send("this is not json");
    await parent.ended; // the child gives the relay up
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.events.filter((e) => e.event === "verdict").map((e) => e.verdict)).toEqual([{ stop: false }, { stop: false }, { stop: false }]);
    expect(parent.lines.length).toBe(1);
    const warned = warnings(run.stderr());
    expect(warned).toEqual([expect.stringMatching(/Optuna relay \(fd 3\) broke: bad verdict line from the parent: this is not json/)]);
  });

  it.each([
    ["a verdict without a boolean stop", '{"type":"verdict","stop":"yes"}'],
    ["a line of another type", '{"type":"prune"}'],
  ])("%s breaks the relay the same way", async (_name, line) => {
    const run = spawnRelayed({ payloads: [healthy(0), healthy(1)] });
    const parent = relay(run);
    await parent.nextLine();
    parent.send(line);
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.events.filter((e) => e.event === "verdict").map((e) => e.verdict)).toEqual([{ stop: false }, { stop: false }]);
    expect(warnings(run.stderr()).length).toBe(1);
  });

  it("a runaway line (over 1 MiB) breaks the relay without being buffered whole", async () => {
    const run = spawnRelayed({ payloads: [healthy(0), healthy(1)] });
    const parent = relay(run);
    await parent.nextLine();
    parent.send(`{"type":"verdict","stop":false,"reason":"${"x".repeat(2 * 1024 * 1024)}"}`);
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.events.filter((e) => e.event === "verdict").map((e) => e.verdict)).toEqual([{ stop: false }, { stop: false }]);
    expect(warnings(run.stderr())).toEqual([expect.stringMatching(/broke: a line of \d+ bytes exceeds the limit of 1048576/)]);
  });

  it("the parent closing its end (EOF) fails open with one warning", async () => {
    const run = spawnRelayed({ payloads: [healthy(0), healthy(1)], final: 0.2 });
    const parent = relay(run);
    await parent.nextLine();
    parent.socket.end();
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.events.map((e) => e.event)).toEqual(["open", "verdict", "verdict", "final"]);
    expect(warnings(run.stderr())).toEqual([expect.stringMatching(/broke: the parent closed the relay/)]);
  });

  it("a parent that does not answer fails open after the relay timeout", async () => {
    const run = spawnRelayed({ options: { relayTimeoutMs: 300 }, payloads: [healthy(0), healthy(1)] });
    const parent = relay(run);
    await parent.nextLine();
    expect(await run.exited).toEqual({ code: 0, signal: null });
    const verdicts = run.events.filter((e) => e.event === "verdict");
    expect(verdicts.map((e) => e.verdict)).toEqual([{ stop: false }, { stop: false }]);
    expect(verdicts[0]?.ms).toBeGreaterThanOrEqual(280);
    expect(verdicts[1]?.ms).toBeLessThan(100);
    expect(warnings(run.stderr())).toEqual([expect.stringMatching(/no verdict within 300 ms/)]);
  });

  it("a descriptor that is not open fails open from the start, with one warning", async () => {
    const run = runTrain({ payloads: [healthy(0)], final: 1 }, { BTTACKLER_RELAY_FD: "99", BTTACKLER_PARAMS: PARAMS });
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.events.map((e) => e.event)).toEqual(["open", "verdict", "final"]);
    expect(run.events[0]).toMatchObject({ host: "optuna", params: { lr: 0.05 } });
    expect(warnings(run.stderr())).toEqual([expect.stringMatching(/cannot open file descriptor 99: EBADF/)]);
  });

  it("a descriptor that is not a socket (here a file) is left untouched and the trial fails open", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bttackler-relay-"));
    const file = join(dir, "not-a-socket");
    writeFileSync(file, "keep me\n");
    const fd = openSync(file, "r+");
    try {
      const run = runTrain({ payloads: [healthy(0)], final: 1 }, { BTTACKLER_RELAY_FD: "3", BTTACKLER_PARAMS: PARAMS }, ["ignore", "pipe", "pipe", fd]);
      expect(await run.exited).toEqual({ code: 0, signal: null });
      expect(run.events.filter((e) => e.event === "verdict").map((e) => e.verdict)).toEqual([{ stop: false }]);
      expect(warnings(run.stderr())).toEqual([expect.stringMatching(/file descriptor 3 is not a socket/)]);
      expect(readFileSync(file, "utf8")).toBe("keep me\n");
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a malformed BTTACKLER_RELAY_FD is refused", async () => {
    const bad = runTrain({}, { BTTACKLER_RELAY_FD: "three" });
    expect((await bad.exited).code).not.toBe(0);
    expect(bad.stderr()).toMatch(/BTTACKLER_RELAY_FD must be a file descriptor number, got "three"/);
  });

  it("a script stopped by the parent's SIGTERM exits by itself, the relay idle, with no final line", async () => {
    const run = spawnRelayed({ payloads: [healthy(0)], waitForStop: true });
    const parent = relay(run);
    await parent.nextLine();
    parent.send('{"type":"verdict","stop":false}');
    await run.next("training");
    run.child.kill("SIGTERM");
    await parent.ended;
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(parent.lines.length).toBe(1);
    expect(warnings(run.stderr())).toEqual([]);
  });
});
