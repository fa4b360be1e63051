/**
 * Splits a byte stream into UTF-8 lines as they arrive, with a bound on a line's length
 * in bytes so that a runaway line cannot exhaust memory: past the bound the line's bytes
 * are dropped and the line is reported as too long when its end arrives. A trailing "\r"
 * is removed. Lengths are bytes, not characters: a line of 1,000 "é" is 2,000 bytes.
 */
import type { Readable } from "node:stream";

export interface LineHandler {
  line(text: string): void;
  /** A line longer than the bound; `bytes` is its length in bytes. */
  tooLong(bytes: number): void;
}

const NEWLINE = 0x0a;

/** Push-based: feed it chunks as they arrive (`push`), then `end` at end of input. */
export class LineSplitter {
  private pieces: Buffer[] = [];
  private bytes = 0;
  private overflow = 0;

  constructor(
    private readonly maxLineBytes: number,
    private readonly handler: LineHandler,
  ) {}

  /** A chunk of the stream; a string is taken as its UTF-8 bytes. */
  push(chunk: Buffer | string): void {
    const data = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    let start = 0;
    for (;;) {
      const nl = data.indexOf(NEWLINE, start);
      this.append(nl < 0 ? data.subarray(start) : data.subarray(start, nl));
      if (nl < 0) return;
      this.emit();
      start = nl + 1;
    }
  }

  /** Emits a last line that had no "\n". */
  end(): void {
    if (this.bytes > 0 || this.overflow > 0) this.emit();
  }

  private append(piece: Buffer): void {
    if (piece.length === 0) return;
    if (this.overflow > 0) this.overflow += piece.length;
    else if (this.bytes + piece.length > this.maxLineBytes) {
      this.overflow = this.bytes + piece.length;
      this.pieces = [];
      this.bytes = 0;
    } else {
      // a copy: the stream may reuse the chunk's memory
      this.pieces.push(Buffer.from(piece));
      this.bytes += piece.length;
    }
  }

  private emit(): void {
    const { pieces, overflow } = this;
    this.pieces = [];
    this.bytes = 0;
    this.overflow = 0;
    if (overflow > 0) {
      this.handler.tooLong(overflow);
      return;
    }
    const text = (pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces)).toString("utf8");
    this.handler.line(text.endsWith("\r") ? text.slice(0, -1) : text);
  }
}

/** Pull-based: reads a stream to its end, line by line. */
export async function readLines(input: Readable, maxLineBytes: number, handler: LineHandler): Promise<void> {
  const lines = new LineSplitter(maxLineBytes, handler);
  for await (const chunk of input as AsyncIterable<Buffer | string>) lines.push(chunk);
  lines.end();
}
