/**
 * A one-line progress bar for long CLI work (replaying a large file, recording, a demo),
 * drawn on a terminal stream, normally standard error, so that it never mixes with data on
 * standard output. It draws only when the stream is a TTY; elsewhere (a pipe, a file, CI
 * logs) every method does nothing but `log`, which writes its text as is.
 *
 *   replay [██████████░░░░░░░░░░]  48%  12.3/25.6 MB  8.1 MB/s  ETA 2s
 */

/** What the bar writes to: process.stderr, or a fake stream in tests. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  /** Terminal width; 80 when unknown. */
  columns?: number;
}

export interface ProgressOptions {
  /** Shown before the bar, e.g. "replay". */
  label: string;
  /** The amount of work when done (bytes or items); 0 or less when unknown (no bar, no ETA). */
  total: number;
  /** "bytes" shows kB/MB/GB and a byte rate; "items" plain counts ("12,300/50,000", "1,200/s"). */
  unit?: "bytes" | "items";
  /** Least time between two redraws; updates in between are only remembered (default 100 ms). */
  intervalMs?: number;
  /** Milliseconds since some origin; for tests. */
  now?: () => number;
}

export interface Progress {
  /** Sets how much is done; redraws at most once per interval. */
  update(done: number): void;
  /** Writes a line of other text (e.g. an error message) without tearing the bar: clears it, writes, redraws. */
  log(text: string): void;
  /** Erases the bar; nothing is drawn after this. */
  finish(): void;
}

const BAR_WIDTH_MAX = 30;
const BAR_WIDTH_MIN = 10;

function formatBytes(n: number): string {
  if (n < 1000) return `${Math.round(n)} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = n / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

function formatCount(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m${String(Math.round(seconds % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** The text of the bar's line (without the carriage return), fitted to `columns`. */
export function progressLine(options: { label: string; total: number; unit: "bytes" | "items" }, done: number, elapsedMs: number, columns: number): string {
  const fmt = options.unit === "bytes" ? formatBytes : formatCount;
  const seconds = elapsedMs / 1000;
  const rate = seconds > 0 ? done / seconds : 0;
  const known = options.total > 0;
  const fraction = known ? Math.min(1, Math.max(0, done / options.total)) : 0;
  const parts = [known ? `${String(Math.floor(fraction * 100)).padStart(3)}%` : "", known ? `${fmt(done)}/${fmt(options.total)}` : fmt(done)];
  if (rate > 0) parts.push(`${fmt(rate)}/s`);
  if (known && rate > 0 && done < options.total) parts.push(`ETA ${formatDuration((options.total - done) / rate)}`);
  const fields = parts.filter((p) => p.length > 0);
  const tail = fields.join("  ");
  const room = columns - 1 - options.label.length - tail.length - 5;
  if (!known || room < BAR_WIDTH_MIN) {
    // no room for a bar: drop fields from the end (ETA, then rate) until the line fits
    while (fields.length > 1 && options.label.length + 2 + fields.join("  ").length > columns - 1) fields.pop();
    return `${options.label}  ${fields.join("  ")}`.slice(0, columns - 1);
  }
  const width = Math.min(BAR_WIDTH_MAX, room);
  const filled = Math.round(fraction * width);
  return `${options.label} [${"█".repeat(filled)}${"░".repeat(width - filled)}]  ${tail}`;
}

class TerminalProgress implements Progress {
  private readonly started: number;
  private lastDraw = -Infinity;
  private done = 0;
  private drawn = false;
  private finished = false;

  constructor(
    private readonly stream: ProgressStream,
    private readonly options: Required<Omit<ProgressOptions, "now">> & { now: () => number },
  ) {
    this.started = options.now();
  }

  update(done: number): void {
    if (this.finished) return;
    this.done = done;
    const now = this.options.now();
    if (now - this.lastDraw < this.options.intervalMs) return;
    this.lastDraw = now;
    this.draw(now);
  }

  log(text: string): void {
    if (this.finished) {
      this.stream.write(text);
      return;
    }
    this.clear();
    this.stream.write(text);
    this.draw(this.options.now());
  }

  finish(): void {
    if (this.finished) return;
    this.clear();
    this.finished = true;
  }

  private draw(now: number): void {
    const columns = this.stream.columns !== undefined && this.stream.columns > 0 ? this.stream.columns : 80; // a pty may say 0
    const line = progressLine(this.options, this.done, now - this.started, columns);
    this.stream.write(`\r${line}\x1b[K`);
    this.drawn = true;
  }

  private clear(): void {
    if (!this.drawn) return;
    this.stream.write("\r\x1b[K");
    this.drawn = false;
  }
}

class SilentProgress implements Progress {
  constructor(private readonly stream: ProgressStream) {}
  update(): void {}
  log(text: string): void {
    this.stream.write(text);
  }
  finish(): void {}
}

/** A progress bar on `stream` when it is a TTY, else one that draws nothing. */
export function createProgress(stream: ProgressStream, options: ProgressOptions): Progress {
  if (stream.isTTY !== true) return new SilentProgress(stream);
  return new TerminalProgress(stream, {
    label: options.label,
    total: options.total,
    unit: options.unit ?? "items",
    intervalMs: options.intervalMs ?? 100,
    now: options.now ?? (() => performance.now()),
  });
}
