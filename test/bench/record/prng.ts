/**
 * A small seeded pseudo-random generator for the trace recorder: mulberry32 on a 32-bit
 * state, plus the draws the search space needs. Every random choice of a recording comes
 * from one of these, so that (seed, trial index) alone decide a trial.
 */

/** Mixes 32-bit words into one seed (murmur3's finaliser over a running hash). */
export function mixSeed(...words: number[]): number {
  let h = 0x9e3779b9;
  for (const word of words) {
    h = Math.imul(h ^ (word >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** The streams a trial draws from; each gets its own seed so that one does not shift another. */
export const STREAMS = { config: 1, init: 2, training: 3 } as const;

/** The seed of one stream of trial `trial` in a recording seeded with `seed`. */
export function streamSeed(seed: number, trial: number, stream: number): number {
  return mixSeed(seed, trial, stream);
}

export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  logUniform(low: number, high: number): number {
    return Math.exp(this.uniform(Math.log(low), Math.log(high)));
  }

  /** An integer in [low, high], both included. */
  integer(low: number, high: number): number {
    return low + Math.floor(this.next() * (high - low + 1));
  }

  choice<T>(options: readonly T[]): T {
    const picked = options[Math.floor(this.next() * options.length)];
    if (picked === undefined) throw new Error("Prng.choice: no options");
    return picked;
  }

  /** Fisher–Yates, in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      const a = items[i] as T;
      items[i] = items[j] as T;
      items[j] = a;
    }
    return items;
  }
}

/**
 * Runs `work` with `Math.random` drawing from `prng`, and restores it afterwards (also on
 * failure). tfjs draws from `Math.random` for everything not given a seed: fit's shuffling
 * of the batches and the dropout masks; with this a trial's training is reproducible on
 * the same backend. Only for code that runs one trial at a time in its process.
 */
export async function withSeededMathRandom<T>(prng: Prng, work: () => Promise<T>): Promise<T> {
  const original = Math.random;
  Math.random = () => prng.next();
  try {
    return await work();
  } finally {
    Math.random = original;
  }
}
