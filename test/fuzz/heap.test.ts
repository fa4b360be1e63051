/**
 * The fuzzer's memory measure on a process of our own: memory it keeps alive is counted,
 * garbage it drops is not, and a process without the probe gives a clear error.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { onLines } from "../serve-process.js";
import { HEAP_PROBE_NODE_ARGS, HeapProbe, liveMiB } from "./heap.js";

// a process that, on each line of standard input, keeps ("keep") or drops ("drop") 40 MiB of arrays (128 numbers each) and then says "ready"
const HOLDER = `
const kept = [];
process.stdin.setEncoding("utf8");
process.stdin.on("data", (text) => {
  for (const command of text.trim().split("\\n")) {
    if (command === "keep") for (let i = 0; i < 40 * 1024; i++) kept.push(new Array(128).fill(i));
    if (command === "drop") kept.length = 0;
    if (command === "garbage") { let junk = []; for (let i = 0; i < 40 * 1024; i++) junk.push(new Array(128).fill(i)); junk = null; }
    process.stdout.write("ready\\n");
  }
});
process.stdout.write("ready\\n");
`;

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
});

function startHolder(nodeArgs: string[]): { child: ChildProcess; probe: HeapProbe; command: (c: string) => Promise<void> } {
  const probe = new HeapProbe();
  const child = spawn(process.execPath, [...nodeArgs, "-e", HOLDER], { stdio: ["pipe", "pipe", "pipe"] });
  children.push(child);
  onLines(child.stderr, probe.onLine);
  const readies: (() => void)[] = [];
  child.stdout?.on("data", (chunk: Buffer) => {
    for (const _ of chunk.toString("utf8").match(/ready\n/g) ?? []) readies.shift()?.();
  });
  const first = new Promise<void>((resolve) => readies.push(resolve));
  const command = async (c: string): Promise<void> => {
    await first;
    const done = new Promise<void>((resolve) => readies.push(resolve));
    child.stdin?.write(`${c}\n`);
    await done;
  };
  return { child, probe, command };
}

describe("HeapProbe", () => {
  it("counts memory a process keeps alive and not the garbage it dropped", async () => {
    const { child, probe, command } = startHolder(HEAP_PROBE_NODE_ARGS);
    await command("noop");
    const start = await probe.sample(child.pid as number);
    await command("garbage");
    const afterGarbage = await probe.sample(child.pid as number);
    expect(liveMiB(afterGarbage) - liveMiB(start)).toBeLessThan(8);
    await command("keep");
    const kept = await probe.sample(child.pid as number);
    expect(liveMiB(kept) - liveMiB(start)).toBeGreaterThan(35);
    await command("drop");
    const dropped = await probe.sample(child.pid as number);
    expect(liveMiB(dropped) - liveMiB(start)).toBeLessThan(8);
  }, 60_000);

  it("says so when gc is not exposed", async () => {
    const { child, probe, command } = startHolder(HEAP_PROBE_NODE_ARGS.filter((a) => a !== "--expose-gc"));
    await command("noop");
    await expect(probe.sample(child.pid as number)).rejects.toThrow(/gc is not exposed/);
  }, 30_000);
});
