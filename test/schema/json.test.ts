import { describe, expect, it } from "vitest";
import { JsonSyntaxError, nonFiniteToNull, parseJson, replaceNonFiniteTokens } from "../../src/schema/json.js";

describe("parseJson", () => {
  it.each([
    ["NaN", null],
    ["Infinity", null],
    ["-Infinity", null],
    ["[NaN, Infinity, -Infinity, 1]", [null, null, null, 1]],
    ['{"a": NaN, "b": {"c": -Infinity}}', { a: null, b: { c: null } }],
    ['{"a":NaN}', { a: null }],
  ])("turns the non-finite tokens of %s into null", (text, expected) => {
    expect(parseJson(text)).toEqual(expected);
  });

  it("leaves the tokens alone inside strings, escaped quotes included", () => {
    expect(parseJson('{"NaN": "Infinity \\" NaN", "x": NaN}')).toEqual({ NaN: 'Infinity " NaN', x: null });
    expect(parseJson('["\\\\", NaN]')).toEqual(["\\", null]);
  });

  it("returns the text unchanged when there is nothing to replace", () => {
    const text = '{"train_loss": 0.5}';
    expect(replaceNonFiniteTokens(text)).toBe(text);
  });

  it.each(["{", "NaNa", "nan", "Inf", "[1,]", "", "{'a': 1}", "- Infinity"])("rejects %j with JsonSyntaxError", (text) => {
    expect(() => parseJson(text)).toThrow(JsonSyntaxError);
  });
});

describe("nonFiniteToNull", () => {
  it("replaces NaN and infinities at any depth and keeps everything else", () => {
    expect(nonFiniteToNull({ a: NaN, b: [1, Infinity, { c: -Infinity, d: "x", e: true, f: null }] })).toEqual({
      a: null,
      b: [1, null, { c: null, d: "x", e: true, f: null }],
    });
  });
});
