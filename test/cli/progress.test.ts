/** The CLI progress bar on a fake terminal: what it draws, how often, how it gets out of the way. */
import { describe, expect, it } from "vitest";
import { createProgress, progressLine, type ProgressStream } from "../../src/cli/progress.js";

class FakeTerminal implements ProgressStream {
  readonly chunks: string[] = [];
  constructor(
    readonly isTTY: boolean,
    readonly columns = 100,
  ) {}
  write(text: string): boolean {
    this.chunks.push(text);
    return true;
  }
  get text(): string {
    return this.chunks.join("");
  }
}

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 0;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe("progressLine", () => {
  it("shows the bar, the percentage, bytes done of total, the rate and the time left", () => {
    const line = progressLine({ label: "replay", total: 25_600_000, unit: "bytes" }, 12_800_000, 2000, 100);
    expect(line).toBe(`replay [${"█".repeat(15)}${"░".repeat(15)}]   50%  12.8 MB/25.6 MB  6.40 MB/s  ETA 2s`);
    expect(line.length).toBeLessThan(100);
  });

  it("counts items, and leaves out the bar when the terminal is narrow or the total unknown", () => {
    expect(progressLine({ label: "record", total: 50_000, unit: "items" }, 12_300, 1000, 120)).toMatch(/^record \[█+░+\]   24%  12,300\/50,000  12,300\/s  ETA 4s$/);
    expect(progressLine({ label: "record", total: 50_000, unit: "items" }, 12_300, 1000, 40)).toBe("record   24%  12,300/50,000  12,300/s");
    expect(progressLine({ label: "record", total: 50_000, unit: "items" }, 12_300, 1000, 30)).toBe("record   24%  12,300/50,000");
    expect(progressLine({ label: "demo", total: 0, unit: "items" }, 7, 0, 80)).toBe("demo  7");
  });
});

describe("createProgress", () => {
  it("redraws in place at most once per interval, and erases itself when finished", () => {
    const term = new FakeTerminal(true);
    const c = clock();
    const progress = createProgress(term, { label: "replay", total: 1000, unit: "bytes", intervalMs: 100, now: c.now });
    progress.update(0);
    c.advance(50);
    progress.update(400); // within the interval: remembered, not drawn
    c.advance(60);
    progress.update(500);
    progress.finish();
    progress.update(900); // after finish: nothing
    expect(term.chunks).toHaveLength(3);
    expect(term.chunks[0]).toMatch(/^\rreplay \[░+\]    0%  0 B\/1.00 kB\x1b\[K$/);
    expect(term.chunks[1]).toMatch(/^\rreplay \[█+░+\]   50%  500 B\/1.00 kB  4.55 kB\/s  ETA 1s\x1b\[K$/);
    expect(term.chunks[2]).toBe("\r\x1b[K");
  });

  it("clears the bar for other text and draws it again after", () => {
    const term = new FakeTerminal(true);
    const c = clock();
    const progress = createProgress(term, { label: "replay", total: 10, now: c.now });
    progress.update(5);
    progress.log("bttackler replay: line 3: invalid JSON\n");
    expect(term.chunks.slice(1, 3)).toEqual(["\r\x1b[K", "bttackler replay: line 3: invalid JSON\n"]);
    expect(term.chunks[3]).toMatch(/^\rreplay \[█+░+\]   50%  5\/10/);
    progress.finish();
    progress.log("after\n");
    expect(term.chunks.slice(-2)).toEqual(["\r\x1b[K", "after\n"]);
  });

  it("draws nothing on a stream that is not a terminal, but still writes logged text", () => {
    const pipe = new FakeTerminal(false);
    const progress = createProgress(pipe, { label: "replay", total: 10 });
    progress.update(3);
    progress.log("message\n");
    progress.finish();
    expect(pipe.text).toBe("message\n");
  });
});
