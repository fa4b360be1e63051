/**
 * One fuzzing run against the real service (`runFuzz`): starts `bttackler serve` on a
 * loopback port with a SQLite file, sends the frames of frames.ts over `connections`
 * WebSocket clients and two hand-made raw sockets, checks every reply (ledger.ts), asks
 * `service.health` every second on a connection of its own, and watches the process.
 * Returns the summary and every failure; fuzz.ts prints it and sets the exit code.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { RawLink, WsLink, type FuzzLink } from "./connections.js";
import { HEAP_PROBE_NODE_ARGS, HeapProbe, liveMiB, type HeapSample } from "./heap.js";
import { FAMILIES, familyOf, frameAt, type Family, type FrameSpace, type FuzzFrame } from "./frames.js";
import type { Failure, ReplyTally } from "./ledger.js";
import { BINARY_EXPECTATION, expectationOf } from "./oracle.js";
import { Random } from "./random.js";
import { describeExit, rssMiB, startService, stopService, type ServiceProcess } from "../serve-process.js";

export interface FuzzOptions {
  frames: number;
  seed: number;
  /** Stop sending after this many seconds (the run still drains and checks). */
  seconds: number;
  /** WebSocket clients (the `ws` library); two raw sockets come on top. */
  connections: number;
  /**
   * Memory criterion: live memory (V8 heap in use plus external memory, after full
   * garbage collections; see heap.ts) at the end minus after the warm-up, in MiB. The
   * state the service may keep is bounded by the frame pools (4 studies × 32 trials × 64
   * steps of verdicts at most, a few MB), so what grows beyond it is a leak: 1 KB per frame
   * would be ~95 MiB over 100,000 frames.
   */
  maxLiveGrowthMiB: number;
  /**
   * The resident set size after those collections may grow by this much (MiB): a coarse
   * guard for memory outside V8 (SQLite, sockets), which keeps pages V8 has freed.
   */
  maxRssGrowthMiB: number;
  /** Progress lines go here. */
  log: (line: string) => void;
}

export const DEFAULT_OPTIONS: Omit<FuzzOptions, "log"> = { frames: 100_000, seed: 1, seconds: 600, connections: 4, maxLiveGrowthMiB: 16, maxRssGrowthMiB: 64 };

export interface FuzzSummary {
  options: Omit<FuzzOptions, "log">;
  framesSent: number;
  framesByFamily: Record<Family, number>;
  /** Reply objects by error code ("ok" for results), batch members included. */
  repliesByCode: Record<string, number>;
  durationS: number;
  /** Live memory and RSS after full collections, after the warm-up and at the end. */
  memoryStart: HeapSample;
  memoryEnd: HeapSample;
  /** Highest RSS sampled during the run (no collection forced). */
  rssPeakMiB: number;
  healthChecks: number;
  /** Connections the service closed on purpose, by close code (1009 oversized, 1002/1007 protocol violations). */
  closesByCode: Record<string, number>;
  stoppedByTimeLimit: boolean;
  failures: Failure[];
}

const RAW_CONNECTIONS = 2;
const WS_WINDOW = 32;
const RAW_WINDOW = 4;
const REPLY_TIMEOUT_MS = 30_000;
const HEALTH_EVERY_MS = 1_000;
const WARM_UP_FRAMES = 5_000;

type LinkKind = "ws" | "raw";

/** Hands out the frames of [start, end) in index order, text/binary frames to ws links, split-writes to raw ones. */
class FrameSource {
  private readonly cursor: Record<LinkKind, number>;
  stopped = false;

  constructor(
    private readonly space: FrameSpace,
    start: number,
    private readonly end: number,
  ) {
    this.cursor = { ws: start, raw: start };
  }

  next(kind: LinkKind): FuzzFrame | undefined {
    while (!this.stopped && this.cursor[kind] < this.end) {
      const index = this.cursor[kind]++;
      const family = familyOf(this.space, index);
      if ((family === "split-writes" || family === "protocol-violations") === (kind === "raw")) return frameAt(this.space, index);
    }
    return undefined;
  }
}

interface Slot {
  kind: LinkKind;
  link: FuzzLink;
  /** Set while the fuzzer itself makes the service close this connection (an oversized frame, a protocol violation). */
  closingOnPurpose: boolean;
  /** Set when the service closed the connection unasked (a failure, reported): the worker replaces it before its next frame. */
  broken: boolean;
}

class FuzzRun {
  private readonly tally: ReplyTally = { byCode: new Map(), failures: [] };
  private readonly framesByFamily = Object.fromEntries(FAMILIES.map((f) => [f, 0])) as Record<Family, number>;
  private readonly slots: Slot[] = [];
  private framesSent = 0;
  private readonly closesByCode = new Map<number, number>();
  private healthChecks = 0;
  private rssPeak = 0;
  private aborted = false;
  private stopping = false;
  private source: FrameSource | undefined;
  private readonly started = performance.now();

  constructor(
    private readonly options: FuzzOptions,
    private readonly service: ServiceProcess,
    private readonly space: FrameSpace,
    private readonly heap: HeapProbe,
  ) {
    void service.exited.then((exit) => {
      if (this.stopping) return;
      this.fail({ problem: `the service exited during the run (${describeExit(exit)}); its last log lines:\n${service.logTail().join("\n")}` });
      this.abort();
    });
  }

  async run(): Promise<FuzzSummary> {
    for (let i = 0; i < this.options.connections; i++) await this.addSlot("ws", `ws-${i}`);
    for (let i = 0; i < RAW_CONNECTIONS; i++) await this.addSlot("raw", `raw-${i}`);
    const health = await HealthMonitor.open(this.service, (failure) => this.fail(failure), () => this.abort());
    const warmUp = Math.min(WARM_UP_FRAMES, Math.floor(this.options.frames / 10));
    await this.sendRange(0, warmUp);
    const memoryStart = await this.memory();
    this.options.log(`warm-up: ${warmUp} frames; service live memory ${liveMiB(memoryStart).toFixed(1)} MiB, RSS ${memoryStart.rssMiB.toFixed(1)} MiB`);
    const progress = setInterval(() => this.progress(), 10_000);
    await this.sendRange(warmUp, this.options.frames);
    clearInterval(progress);
    const stoppedByTimeLimit = this.source?.stopped === true && !this.aborted;
    await new Promise((resolve) => setTimeout(resolve, 500)); // a stray second reply would arrive now
    if (!this.aborted) await health.finalCheck();
    this.healthChecks = health.stop();
    const memoryEnd = await this.memory();
    this.rssPeak = Math.max(this.rssPeak, health.rssPeak);
    this.checkMemory(memoryStart, memoryEnd);
    for (const line of this.service.errorLines()) this.fail({ problem: `the service logged an error: ${line.slice(0, 300)}` });
    for (const slot of this.slots) slot.link.close();
    this.stopping = true;
    return this.summary(memoryStart, memoryEnd, stoppedByTimeLimit);
  }

  /** The service's memory after full collections, with nothing in flight; NaN when the run was aborted or the probe failed. */
  private async memory(): Promise<HeapSample> {
    const none: HeapSample = { heapUsedMiB: Number.NaN, externalMiB: Number.NaN, rssMiB: Number.NaN };
    if (this.aborted) return none;
    try {
      return await this.heap.sample(this.service.pid);
    } catch (err) {
      this.fail({ problem: (err as Error).message });
      return none;
    }
  }

  /** Fails the run when live memory or the RSS grew beyond its bound between the two samples. */
  private checkMemory(start: HeapSample, end: HeapSample): void {
    const live = liveMiB(end) - liveMiB(start);
    if (live > this.options.maxLiveGrowthMiB) {
      this.fail({ problem: `memory not stable: live memory grew by ${live.toFixed(1)} MiB (${liveMiB(start).toFixed(1)} → ${liveMiB(end).toFixed(1)}), limit ${this.options.maxLiveGrowthMiB} MiB` });
    }
    const rss = end.rssMiB - start.rssMiB;
    if (rss > this.options.maxRssGrowthMiB) {
      this.fail({ problem: `memory not stable: RSS after garbage collection grew by ${rss.toFixed(1)} MiB (${start.rssMiB.toFixed(1)} → ${end.rssMiB.toFixed(1)}), limit ${this.options.maxRssGrowthMiB} MiB` });
    }
  }

  private async addSlot(kind: LinkKind, name: string): Promise<Slot> {
    const slot: Slot = { kind, link: await this.connect(kind, name), closingOnPurpose: false, broken: false };
    this.watchClose(slot);
    this.slots.push(slot);
    return slot;
  }

  private connect(kind: LinkKind, name: string): Promise<FuzzLink> {
    return kind === "ws" ? WsLink.open(name, this.service.url, this.tally) : RawLink.open(name, this.service.port, this.tally);
  }

  /** A close the fuzzer did not cause is a failure; what was pending on it is listed, and the worker replaces the connection. */
  private watchClose(slot: Slot): void {
    const link = slot.link;
    void link.closed.then((code) => {
      if (slot.closingOnPurpose || this.stopping || slot.link !== link) return;
      slot.broken = true;
      const pending = link.ledger.clear();
      this.fail({ problem: `${link.name}: the service closed the connection with code ${code}; ${pending.length} frame(s) unanswered, e.g. ${JSON.stringify(pending.slice(0, 3))}` });
    });
  }

  private async sendRange(start: number, end: number): Promise<void> {
    if (this.aborted) return;
    const source = new FrameSource(this.space, start, end);
    this.source = source;
    const deadline = this.started + this.options.seconds * 1000;
    const timer = setInterval(() => {
      if (performance.now() > deadline) source.stopped = true;
    }, 100);
    await Promise.all(this.slots.map((slot) => this.work(slot, source)));
    clearInterval(timer);
    await Promise.all(this.slots.map((slot) => this.drain(slot)));
  }

  private async work(slot: Slot, source: FrameSource): Promise<void> {
    const window = slot.kind === "ws" ? WS_WINDOW : RAW_WINDOW;
    for (let frame = source.next(slot.kind); frame !== undefined && !this.aborted; frame = source.next(slot.kind)) {
      this.framesSent++;
      this.framesByFamily[frame.family]++;
      if (frame.closeCode !== undefined) {
        await this.sendClosing(slot, frame, frame.closeCode);
        continue;
      }
      if (slot.broken) await this.replaceLink(slot);
      if (!(await this.waitForRoom(slot, window))) return;
      slot.link.ledger.expect({ index: frame.index, family: frame.family }, frame.binary ? BINARY_EXPECTATION : expectationOf(frame.data as string));
      await slot.link.send(frame, Random.forFrame(this.space.seed ^ 0x5eed, frame.index));
    }
  }

  /** Waits until the link has room in its window; false (and the run aborted) when replies stop coming. */
  private async waitForRoom(slot: Slot, window: number): Promise<boolean> {
    try {
      await slot.link.ledger.whenPendingBelow(window, REPLY_TIMEOUT_MS);
      return true;
    } catch (err) {
      this.failUnanswered(slot, (err as Error).message);
      return false;
    }
  }

  /**
   * A frame after which the service must close the connection with `expected`: over
   * --max-payload (1009), or against RFC 6455 (1002, 1007). Sent once nothing else is
   * pending on the connection; then a new connection takes its place.
   */
  private async sendClosing(slot: Slot, frame: FuzzFrame, expected: number): Promise<void> {
    if (!(await this.waitForRoom(slot, 1))) return;
    slot.closingOnPurpose = true;
    void slot.link.send(frame, Random.forFrame(this.space.seed ^ 0x5eed, frame.index));
    const code = await Promise.race([slot.link.closed, sleepValue(REPLY_TIMEOUT_MS, -1)]);
    if (code !== expected) this.fail({ index: frame.index, family: frame.family, problem: `expected close code ${expected}, got ${code === -1 ? "no close" : code}` });
    else this.closesByCode.set(code, (this.closesByCode.get(code) ?? 0) + 1);
    await this.replaceLink(slot);
    slot.closingOnPurpose = false;
  }

  /** A new connection in place of the slot's closed or broken one. */
  private async replaceLink(slot: Slot): Promise<void> {
    slot.link.close();
    slot.link = await this.connect(slot.kind, slot.link.name);
    slot.broken = false;
    this.watchClose(slot);
  }

  private async drain(slot: Slot): Promise<void> {
    if (this.aborted) return;
    try {
      await slot.link.ledger.whenPendingBelow(1, REPLY_TIMEOUT_MS);
    } catch (err) {
      this.failUnanswered(slot, (err as Error).message);
    }
  }

  private failUnanswered(slot: Slot, why: string): void {
    const frames = slot.link.ledger.unanswered();
    this.fail({ problem: `${slot.link.name}: ${why}; unanswered frames (index/family): ${frames.slice(0, 10).map((f) => `${f.index}/${f.family}`).join(", ")}` });
    this.abort();
  }

  private fail(failure: Failure): void {
    this.tally.failures.push(failure);
  }

  private abort(): void {
    this.aborted = true;
    if (this.source) this.source.stopped = true;
  }

  private progress(): void {
    const seconds = (performance.now() - this.started) / 1000;
    let rss = "gone";
    try {
      rss = `${rssMiB(this.service.pid).toFixed(1)} MiB`;
    } catch {
      /* the process is gone: its exit is reported by the run */
    }
    this.options.log(`… ${this.framesSent} frames in ${seconds.toFixed(0)} s, ${this.tally.failures.length} failure(s), service RSS ${rss}`);
  }

  private summary(memoryStart: HeapSample, memoryEnd: HeapSample, stoppedByTimeLimit: boolean): FuzzSummary {
    const { log: _log, ...options } = this.options;
    return {
      options,
      framesSent: this.framesSent,
      framesByFamily: this.framesByFamily,
      repliesByCode: Object.fromEntries([...this.tally.byCode].sort(([a], [b]) => a.localeCompare(b))),
      durationS: (performance.now() - this.started) / 1000,
      memoryStart,
      memoryEnd,
      rssPeakMiB: Math.max(this.rssPeak, memoryEnd.rssMiB),
      healthChecks: this.healthChecks,
      closesByCode: Object.fromEntries(this.closesByCode),
      stoppedByTimeLimit,
      failures: this.tally.failures,
    };
  }
}

function sleepValue<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(() => resolve(value), ms).unref());
}

/** `service.health` once a second on a connection of its own: every answer must come within the timeout and say "ok". */
class HealthMonitor {
  private timer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private answered = 0;
  private inFlight = false;
  rssPeak = 0;

  private constructor(
    private readonly ws: WebSocket,
    private readonly service: ServiceProcess,
    private readonly fail: (failure: Failure) => void,
    private readonly abort: () => void,
  ) {
    this.timer = setInterval(() => void this.tick(), HEALTH_EVERY_MS);
  }

  static open(service: ServiceProcess, fail: (failure: Failure) => void, abort: () => void): Promise<HealthMonitor> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(service.url);
      ws.once("open", () => resolve(new HealthMonitor(ws, service, fail, abort)));
      ws.once("error", reject);
    });
  }

  /** The last health check, after the run: it must answer too. */
  async finalCheck(): Promise<void> {
    while (this.inFlight) await sleepValue(20, undefined);
    await this.check();
  }

  /** Stops the checks; returns how many were answered. */
  stop(): number {
    clearInterval(this.timer);
    this.timer = undefined;
    this.ws.close();
    return this.answered;
  }

  private async tick(): Promise<void> {
    if (this.inFlight || this.timer === undefined) return;
    this.inFlight = true;
    try {
      this.rssPeak = Math.max(this.rssPeak, rssMiB(this.service.pid));
      await this.check();
    } catch {
      /* the process is gone: its exit is reported by the run */
    } finally {
      this.inFlight = false;
    }
  }

  private check(): Promise<void> {
    const id = `health-${this.nextId++}`;
    return new Promise((resolve) => {
      const timeout = setTimeout(() => {
        this.ws.off("message", onMessage);
        this.fail({ problem: `service.health did not answer within ${REPLY_TIMEOUT_MS} ms` });
        this.abort();
        resolve();
      }, REPLY_TIMEOUT_MS);
      const onMessage = (data: WebSocket.RawData): void => {
        const reply = JSON.parse(String(data)) as { id?: unknown; result?: { status?: unknown } };
        if (reply.id !== id) return;
        this.ws.off("message", onMessage);
        clearTimeout(timeout);
        if (reply.result?.status === "ok") this.answered++;
        else this.fail({ problem: `service.health answered ${String(data).slice(0, 200)}` });
        resolve();
      };
      this.ws.on("message", onMessage);
      this.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method: "service.health" }));
    });
  }
}

/** Starts the service on a fresh database, fuzzes it, stops it and removes the database. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzSummary> {
  const dir = mkdtempSync(join(tmpdir(), "bttackler-fuzz-"));
  // FUZZ_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles the service
  const nodeArgs = [...HEAP_PROBE_NODE_ARGS, ...(process.env.FUZZ_NODE_ARGS ? process.env.FUZZ_NODE_ARGS.split(" ") : [])];
  const heap = new HeapProbe();
  const service = await startService({ args: ["--db", join(dir, "fuzz.db")], nodeArgs, keepLines: 50, onLine: heap.onLine });
  options.log(`service ${service.url} (pid ${service.pid}), database ${join(dir, "fuzz.db")}`);
  try {
    const space: FrameSpace = { seed: options.seed, total: options.frames, maxPayload: 1024 * 1024 };
    return await new FuzzRun(options, service, space, heap).run();
  } finally {
    await stopService(service);
    rmSync(dir, { recursive: true, force: true });
  }
}
