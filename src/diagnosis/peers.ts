/**
 * Where a trial stands among its peers: for a metric, the values the other trials of the
 * study reported at the same step, with every trial that stopped or ended before that
 * step carried forward at its last value.
 *
 * Carrying them forward keeps the comparison honest in a live study. Without it, the
 * cohort at a late step holds only the survivors, and since the weak trials have been
 * stopped already, a sound trial falls in rank just for having survived among good ones
 * (measured on the recorded traces: a median cut then stopped 44.5 % of the eventual
 * top-quartile trials; with carrying forward, none; docs/benchmarks.md).
 *
 * Pure bookkeeping, deterministic in the order of the calls, so a replay rebuilds it.
 * Per step, values are kept sorted; a departure (trial stopped or ended, with its last
 * step and value) is folded into a step's cohort the first time that step is looked at
 * after it, so every departure costs one sorted insertion per later step queried.
 */
import type { Direction } from "./types.js";
import { insertSorted, searchSorted } from "./stats.js";

/** The comparison a rule gets: how many peers there are and how many did better. */
export interface PeerView {
  /** Peers at this step: other trials' values at it plus the departed carried forward. */
  readonly size: number;
  /** How many peers have a strictly better value than `value` in `direction`. */
  better(value: number, direction: Direction): number;
}

interface Departure {
  step: number;
  value: number;
}

class MetricPeers {
  private readonly byStep = new Map<number, number[]>();
  /** Departures in arrival order (append-only). */
  private readonly departed: Departure[] = [];
  /** Per step, how many entries of `departed` have been considered for it. */
  private readonly folded = new Map<number, number>();

  add(step: number, value: number): void {
    insertSorted(this.sortedAt(step), value);
  }

  depart(step: number, value: number): void {
    this.departed.push({ step, value });
  }

  view(step: number): PeerView {
    const sorted = this.sortedAt(step);
    let i = this.folded.get(step) ?? 0;
    for (; i < this.departed.length; i++) {
      const d = this.departed[i] as Departure;
      if (d.step < step) insertSorted(sorted, d.value);
    }
    this.folded.set(step, i);
    return {
      size: sorted.length,
      better: (value, direction) => (direction === "maximize" ? sorted.length - searchSorted(sorted, value, "right") : searchSorted(sorted, value, "left")),
    };
  }

  private sortedAt(step: number): number[] {
    let sorted = this.byStep.get(step);
    if (sorted === undefined) {
      sorted = [];
      this.byStep.set(step, sorted);
    }
    return sorted;
  }
}

/** The peers of every tracked metric of one study. */
export class Peers {
  private readonly metrics = new Map<string, MetricPeers>();
  /** The tracked metrics: only those the enabled rules compare. */
  readonly tracked: readonly string[];

  constructor(tracked: Iterable<string>) {
    for (const metric of tracked) this.metrics.set(metric, new MetricPeers());
    this.tracked = [...this.metrics.keys()];
  }

  /** A trial reported `value` of `metric` at `step` (call after the trial's own view of that step). */
  add(metric: string, step: number, value: number): void {
    this.metrics.get(metric)?.add(step, value);
  }

  /** A trial left the study (stopped or ended) with `value` as its last value of `metric`, reported at `step`. */
  depart(metric: string, step: number, value: number): void {
    this.metrics.get(metric)?.depart(step, value);
  }

  /** The peers at `step`, or undefined when `metric` is not tracked. */
  view(metric: string, step: number): PeerView | undefined {
    return this.metrics.get(metric)?.view(step);
  }
}
