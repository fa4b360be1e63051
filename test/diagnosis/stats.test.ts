import { describe, expect, it } from "vitest";
import {
  adjacentRatios,
  cv,
  finite,
  fmt,
  insertSorted,
  searchSorted,
  isNonFinite,
  mean,
  median,
  percentileOfSorted,
  slope,
  std,
} from "../../src/diagnosis/stats.js";

describe("isNonFinite / finite", () => {
  it.each([
    [null, true],
    [NaN, true],
    [Infinity, true],
    [-Infinity, true],
    [0, false],
    [-0, false],
    [1.5, false],
    [-1e300, false],
    [undefined, false],
    ["1", false],
  ])("isNonFinite(%s) is %s", (x, expected) => {
    expect(isNonFinite(x)).toBe(expected);
  });

  it.each([
    [0, 0],
    [2.5, 2.5],
    [-3, -3],
    [null, undefined],
    [undefined, undefined],
    [NaN, undefined],
    [Infinity, undefined],
    [-Infinity, undefined],
    ["2", undefined],
  ])("finite(%s) is %s", (x, expected) => {
    expect(finite(x)).toBe(expected);
  });
});

describe("mean / std / cv", () => {
  it("mean is the arithmetic mean", () => {
    expect(mean([1, 2, 3, 4])).toBe(2.5);
    expect(mean([-2, 2])).toBe(0);
  });

  it("std is the population standard deviation (ddof = 0, as NumPy)", () => {
    expect(std([2, 4, 4, 4, 5, 5, 7, 9])).toBe(2);
    expect(std([1, 3])).toBe(1);
    expect(std([5, 5, 5])).toBe(0);
  });

  it("cv is std / mean", () => {
    expect(cv([1, 3])).toBe(0.5);
    expect(cv([1, 1, 3, 3])).toBe(0.5);
    expect(cv([4, 4, 4])).toBe(0);
  });

  it.each([
    ["empty", []],
    ["zero mean", [-1, 1]],
    ["all zero", [0, 0, 0]],
    ["negative mean", [-3, -1]],
  ])("cv is undefined for %s", (_label, xs) => {
    expect(cv(xs)).toBeUndefined();
  });
});

describe("median", () => {
  it.each([
    [[3], 3],
    [[3, 1, 2], 2],
    [[4, 1, 3, 2], 2.5],
    [[1e-3, 1e-3, 5, 1e4, 1e4, 1e4], 5002.5],
    [[-1, -5, 0], -1],
  ])("median(%j) = %s", (xs, expected) => {
    expect(median(xs)).toBeCloseTo(expected, 12);
  });

  it("sorts numerically, not lexically", () => {
    expect(median([10, 9, 100])).toBe(10);
  });

  it("does not reorder its input", () => {
    const xs = [3, 1, 2];
    median(xs);
    expect(xs).toEqual([3, 1, 2]);
  });
});

describe("slope", () => {
  it("is 0 for fewer than two points", () => {
    expect(slope([])).toBe(0);
    expect(slope([5])).toBe(0);
  });

  it("is the least-squares slope against 0, 1, 2, ...", () => {
    expect(slope([1, 3, 5, 7])).toBe(2);
    expect(slope([7, 5, 3, 1])).toBe(-2);
    expect(slope([2, 2, 2])).toBe(0);
    // np.polyfit([0..5], [1,3,1,3,1,3], 1)[0] == 0.17142857142857143
    expect(slope([1, 3, 1, 3, 1, 3])).toBeCloseTo(0.17142857142857143, 14);
  });
});

describe("percentileOfSorted (NumPy linear interpolation)", () => {
  it.each([
    // values checked against numpy.percentile
    [[1, 2, 3, 4], 0, 1],
    [[1, 2, 3, 4], 25, 1.75],
    [[1, 2, 3, 4], 50, 2.5],
    [[1, 2, 3, 4], 75, 3.25],
    [[1, 2, 3, 4], 100, 4],
    [[0, 10, 20, 30, 40, 50, 60, 70, 80, 90], 10, 9],
    [[0, 10, 20, 30, 40, 50, 60, 70, 80, 90], 90, 81],
    [[10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 10, 19],
    [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 10, 1],
    [[7], 10, 7],
  ])("P(%j, %s) = %s", (sorted, p, expected) => {
    expect(percentileOfSorted(sorted, p)).toBeCloseTo(expected, 12);
  });

  it("is NaN for an empty array", () => {
    expect(percentileOfSorted([], 10)).toBeNaN();
  });
});

describe("searchSorted", () => {
  it("finds the first index >= x (left) or > x (right), as NumPy's searchsorted", () => {
    const xs = [1, 2, 2, 2, 5];
    expect([0, 1, 2, 3, 5, 6].map((x) => searchSorted(xs, x, "left"))).toEqual([0, 0, 1, 4, 4, 5]);
    expect([0, 1, 2, 3, 5, 6].map((x) => searchSorted(xs, x, "right"))).toEqual([0, 1, 4, 4, 5, 5]);
    expect(searchSorted([], 1, "left")).toBe(0);
  });
});

describe("insertSorted", () => {
  it("keeps the array ascending, duplicates included", () => {
    const xs: number[] = [];
    for (const x of [5, 1, 3, 3, 9, -2, 5, 0]) insertSorted(xs, x);
    expect(xs).toEqual([-2, 0, 1, 3, 3, 5, 5, 9]);
  });

  it("inserts at both ends", () => {
    const xs = [2, 4];
    insertSorted(xs, 1);
    insertSorted(xs, 5);
    expect(xs).toEqual([1, 2, 4, 5]);
  });
});

describe("fmt", () => {
  it.each([
    [0, "0"],
    [1.23456, "1.235"],
    [0.5, "0.5"],
    [1e4, "1.000e+4"],
    [5e-4, "5.000e-4"],
    [-2e5, "-2.000e+5"],
    [NaN, "NaN"],
    [Infinity, "Infinity"],
    [null, "non-finite"],
    [undefined, "non-finite"],
  ])("fmt(%s) = %s", (x, expected) => {
    expect(fmt(x)).toBe(expected);
  });
});

describe("adjacentRatios", () => {
  it("divides each value by its output-side neighbour", () => {
    expect(adjacentRatios([8, 4, 1])).toEqual([2, 4]);
  });

  it("skips pairs whose denominator is zero or negative", () => {
    expect(adjacentRatios([1, 0, 2])).toEqual([0]);
    expect(adjacentRatios([1, -1, 2])).toEqual([-0.5]);
    expect(adjacentRatios([3, 0])).toEqual([]);
  });

  it("is empty for fewer than two values", () => {
    expect(adjacentRatios([])).toEqual([]);
    expect(adjacentRatios([1])).toEqual([]);
  });
});
