/**
 * Splits a text stream into lines as they arrive, with a bound on line length so that
 * a runaway line cannot exhaust memory: past the bound the line's text is dropped and
 * the line is reported as too long when its end arrives. A trailing "\r" is removed.
 */
import type { Readable } from "node:stream";

export interface LineHandler {
  line(text: string): void;
  tooLong(length: number): void;
}

/** Push-based: feed it chunks as they arrive (`push`), then `end` at end of input. */
export class LineSplitter {
  private buffered = "";
  private overflow = 0;

  constructor(
    private readonly maxLineChars: number,
    private readonly handler: LineHandler,
  ) {}

  push(chunk: string): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf("\n", start);
      this.append(nl < 0 ? chunk.slice(start) : chunk.slice(start, nl));
      if (nl < 0) return;
      this.emit();
      start = nl + 1;
    }
  }

  /** Emits a last line that had no "\n". */
  end(): void {
    if (this.buffered.length > 0 || this.overflow > 0) this.emit();
  }

  private append(piece: string): void {
    if (this.overflow > 0) this.overflow += piece.length;
    else if (this.buffered.length + piece.length > this.maxLineChars) {
      this.overflow = this.buffered.length + piece.length;
      this.buffered = "";
    } else this.buffered += piece;
  }

  private emit(): void {
    const { buffered, overflow } = this;
    this.buffered = "";
    this.overflow = 0;
    if (overflow > 0) this.handler.tooLong(overflow);
    else this.handler.line(buffered.endsWith("\r") ? buffered.slice(0, -1) : buffered);
  }
}

/** Pull-based: reads a stream to its end, line by line. */
export async function readLines(input: Readable, maxLineChars: number, handler: LineHandler): Promise<void> {
  input.setEncoding("utf8");
  const lines = new LineSplitter(maxLineChars, handler);
  for await (const chunk of input as AsyncIterable<string>) lines.push(chunk);
  lines.end();
}
