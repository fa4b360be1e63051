/**
 * Small numeric helpers for the rules. Pure functions over finite numbers.
 * Conventions follow NumPy's defaults so that figures match the reference code:
 * population standard deviation (ddof = 0), linear-interpolation percentiles,
 * least-squares slope as `np.polyfit(x, y, 1)[0]`.
 */

/** True for null, undefined-free non-finite numbers (NaN, ±Infinity). */
export function isNonFinite(x: unknown): boolean {
  return x === null || (typeof x === "number" && !Number.isFinite(x));
}

/** The value when it is a finite number, otherwise undefined. */
export function finite(x: unknown): number | undefined {
  return typeof x === "number" && Number.isFinite(x) ? x : undefined;
}

export function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Population standard deviation (ddof = 0). */
export function std(xs: readonly number[]): number {
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / xs.length);
}

/** Coefficient of variation std/mean; undefined when the mean is not positive (CV is meaningless there). */
export function cv(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const m = mean(xs);
  if (!(m > 0)) return undefined;
  return std(xs) / m;
}

/**
 * How much a curve fell over its last `window` steps, relative to where it was:
 * (v[n-1-window] - v[n-1]) / |v[n-1-window]|; negative when it rose. Undefined when the
 * curve has `window` values or fewer, `window` is below 1, or the value `window` steps back is 0.
 */
export function relativeFall(values: readonly number[], window: number): number | undefined {
  const n = values.length;
  if (window < 1 || n <= window) return undefined;
  const before = values[n - 1 - window] as number;
  const now = values[n - 1] as number;
  if (before === 0) return undefined;
  return (before - now) / Math.abs(before);
}

export function median(xs: readonly number[]): number {
  const s = sortedCopy(xs);
  const n = s.length;
  const mid = n >> 1;
  return n % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * An ascending copy. Columns are short (one value per layer): insertion sort on a plain
 * array beats allocating a typed array or calling a comparator; long ones use the typed sort.
 */
function sortedCopy(xs: readonly number[]): ArrayLike<number> {
  const n = xs.length;
  if (n > 32) return Float64Array.from(xs).sort();
  const s = xs.slice();
  for (let i = 1; i < n; i++) {
    const v = s[i] as number;
    let j = i - 1;
    while (j >= 0 && (s[j] as number) > v) {
      s[j + 1] = s[j] as number;
      j--;
    }
    s[j + 1] = v;
  }
  return s;
}

/** Least-squares slope of ys against 0, 1, 2, ... */
export function slope(ys: readonly number[]): number {
  const n = ys.length;
  if (n < 2) return 0;
  const xm = (n - 1) / 2;
  const ym = mean(ys);
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    const dx = i - xm;
    num += dx * ((ys[i] as number) - ym);
    den += dx * dx;
  }
  return num / den;
}

/** NumPy-style linear-interpolation percentile (p in [0, 100]) of an ascending array. */
export function percentileOfSorted(sorted: readonly number[], p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = ((n - 1) * p) / 100;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

/**
 * Where x would go in an ascending array (NumPy's searchsorted): "left" gives the first index
 * whose value is >= x, "right" the first index whose value is > x. Binary search.
 */
export function searchSorted(sorted: readonly number[], x: number, side: "left" | "right"): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const v = sorted[mid] as number;
    if (v < x || (side === "right" && v === x)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Insert x into an ascending array, keeping it sorted (binary search). */
export function insertSorted(sorted: number[], x: number): void {
  sorted.splice(searchSorted(sorted, x, "right"), 0, x);
}

/** Format a number for messages: short, but exact enough to compare against a threshold. */
export function fmt(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return String(x ?? "non-finite");
  if (x === 0) return "0";
  const a = Math.abs(x);
  return a >= 1e4 || a < 1e-3 ? x.toExponential(3) : String(Number(x.toPrecision(4)));
}

/**
 * Quotients q_i = x_i / x_{i+1} of neighbouring values (input side first), for the
 * pairs whose denominator is positive. A zero denominator is a vanishing-gradient
 * signal, reported by that rule, so it yields no quotient here.
 */
export function adjacentRatios(xs: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < xs.length; i++) {
    const den = xs[i + 1] as number;
    if (den > 0) out.push((xs[i] as number) / den);
  }
  return out;
}
