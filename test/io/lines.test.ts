/** LineSplitter: the bound on a line is in bytes of UTF-8, also when a character is split across chunks. */
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { LineSplitter, readLines } from "../../src/io/lines.js";

function split(max: number, chunks: (string | Buffer)[]): (string | { tooLong: number })[] {
  const out: (string | { tooLong: number })[] = [];
  const lines = new LineSplitter(max, { line: (t) => out.push(t), tooLong: (n) => out.push({ tooLong: n }) });
  for (const c of chunks) lines.push(c);
  lines.end();
  return out;
}

describe("LineSplitter", () => {
  it("counts bytes, not characters: 6 'é' are 12 bytes", () => {
    expect(split(11, ["éééééé\nab\n"])).toEqual([{ tooLong: 12 }, "ab"]);
    expect(split(12, ["éééééé\nab\n"])).toEqual(["éééééé", "ab"]);
  });

  it("rebuilds a character split between two chunks, and removes a trailing \\r", () => {
    const bytes = Buffer.from("né\r\nz", "utf8");
    expect(split(100, [bytes.subarray(0, 2), bytes.subarray(2)])).toEqual(["né", "z"]);
  });

  it("reads a stream of buffers and counts an overlong last line without a newline", async () => {
    const out: unknown[] = [];
    const input = Readable.from([Buffer.from("ok\n"), Buffer.from("€€€€")]);
    await readLines(input, 10, { line: (t) => out.push(t), tooLong: (n) => out.push({ tooLong: n }) });
    expect(out).toEqual(["ok", { tooLong: 12 }]);
  });
});
