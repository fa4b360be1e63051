/**
 * A seeded random source for the fuzzer. Every frame gets its own generator, seeded
 * from (run seed, frame index), so that frame i is the same in every run with the same
 * seed, whatever the order in which connections happen to send. The generator is the tests'
 * mulberry32 (test/helpers.ts), whose floats are its 32-bit outputs divided by 2^32.
 */
import { mulberry32 } from "../helpers.js";

/** A 32-bit hash of two integers (the run seed and a frame index), so that neighbouring indices give unrelated streams. */
function mix(seed: number, index: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 0x632be5ab, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

export class Random {
  private readonly next: () => number;

  constructor(seed: number) {
    this.next = mulberry32(seed);
  }

  /** The generator of frame `index` of a run seeded with `seed`. */
  static forFrame(seed: number, index: number): Random {
    return new Random(mix(seed, index));
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.next();
  }

  /** Uniform integer in [min, max] (both included). */
  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[this.int(0, items.length - 1)] as T;
  }

  /** An item chosen with probability proportional to its weight. */
  weighted<T>(items: readonly (readonly [T, number])[]): T {
    const total = items.reduce((sum, [, w]) => sum + w, 0);
    let at = this.float() * total;
    for (const [item, w] of items) {
      at -= w;
      if (at < 0) return item;
    }
    return (items[items.length - 1] as readonly [T, number])[0];
  }

  /** Each byte is the low byte of one 32-bit output of the generator. */
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = (this.next() * 2 ** 32) & 0xff;
    return out;
  }
}
