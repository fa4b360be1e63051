/**
 * Splits a text stream into lines as they arrive, with a bound on line length so that
 * a runaway line cannot exhaust memory: past the bound the line's text is dropped and
 * the line is reported as too long when its end arrives.
 */
import type { Readable } from "node:stream";

export interface LineHandler {
  line(text: string): void;
  tooLong(length: number): void;
}

export async function readLines(input: Readable, maxLineChars: number, handler: LineHandler): Promise<void> {
  input.setEncoding("utf8");
  let buffered = "";
  let overflow = 0;
  const append = (piece: string): void => {
    if (overflow > 0) overflow += piece.length;
    else if (buffered.length + piece.length > maxLineChars) {
      overflow = buffered.length + piece.length;
      buffered = "";
    } else buffered += piece;
  };
  const emit = (): void => {
    if (overflow > 0) handler.tooLong(overflow);
    else handler.line(buffered.endsWith("\r") ? buffered.slice(0, -1) : buffered);
    buffered = "";
    overflow = 0;
  };
  for await (const chunk of input as AsyncIterable<string>) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf("\n", start);
      append(nl < 0 ? chunk.slice(start) : chunk.slice(start, nl));
      if (nl < 0) break;
      emit();
      start = nl + 1;
    }
  }
  if (buffered.length > 0 || overflow > 0) emit();
}
