/**
 * What NNI receives as a metric value. NNI's tuners, its built-in assessors and its web
 * UI read one number per result, `default`; a dict passes through to the assessor whole
 * (docs/nni.md), so each intermediate result is `{default: <number>, ...payload}` and
 * bttackler's NNI assessor reads the payload back out of it.
 *
 * Which number is `default` (option `metric`):
 * - a metric name: that metric of the payload, as it is;
 * - a function: whatever it returns for the payload;
 * - nothing (the default): `val_acc`, else `train_acc`, else minus `val_loss`, else minus
 *   `train_loss` — the first of these the trial reports, chosen at its first report that
 *   has one and kept from then on, so the curve NNI sees never switches meaning. Higher is
 *   always better: run the experiment with `optimize_mode: maximize`. To tune on a loss
 *   with `optimize_mode: minimize`, pass `metric: "val_loss"`.
 * A missing or non-finite value gives NaN.
 *
 * Encoding: `default` and a numeric final value are written as Python's `json.dumps`
 * (which NNI's own trial SDK uses) writes them, so a non-finite one is the bare token
 * `NaN`, `Infinity` or `-Infinity`: NNI's tuners and assessors then get a float NaN, as
 * they would from a Python trial, rather than None (on which they raise), and NNI's web UI
 * parses such values with JSON5. The payload itself keeps payload v1's convention
 * (non-finite numbers are null), as does every other number.
 */
import type { PayloadV1 } from "../diagnosis/types.js";
import type { FinalValue, MetricPicker } from "./types.js";

type Candidate = { name: string; sign: 1 | -1 };

export const DEFAULT_METRIC_ORDER: readonly Candidate[] = [
  { name: "val_acc", sign: 1 },
  { name: "train_acc", sign: 1 },
  { name: "val_loss", sign: -1 },
  { name: "train_loss", sign: -1 },
];

function asNumber(value: unknown): number {
  return typeof value === "number" ? value : Number.NaN;
}

/** Chooses `default` for each report of one trial (stateful: the automatic choice is kept). */
export class DefaultMetric {
  private chosen: Candidate | undefined;

  constructor(private readonly option: string | MetricPicker | undefined) {}

  /** The name the value comes from, once known (for messages and tests). */
  get source(): string | undefined {
    if (typeof this.option === "string") return this.option;
    if (typeof this.option === "function") return "(function)";
    return this.chosen === undefined ? undefined : `${this.chosen.sign < 0 ? "-" : ""}${this.chosen.name}`;
  }

  pick(payload: PayloadV1): number {
    const metrics = payload.metrics ?? {};
    if (typeof this.option === "function") return asNumber(this.option(payload));
    if (typeof this.option === "string") return asNumber(metrics[this.option]);
    if (this.chosen === undefined) {
      this.chosen = DEFAULT_METRIC_ORDER.find((c) => Object.prototype.hasOwnProperty.call(metrics, c.name));
    }
    if (this.chosen === undefined) return Number.NaN;
    const value = asNumber(metrics[this.chosen.name]);
    return this.chosen.sign * value;
  }
}

/** A number as Python's json.dumps writes it: JSON, with NaN/Infinity/-Infinity as bare tokens. */
export function pythonNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "Infinity";
  if (value === -Infinity) return "-Infinity";
  return JSON.stringify(value);
}

/** `{"default": <number>, ...rest}` with `default` first, written as pythonNumber writes it, the rest as JSON. */
function withDefault(value: number, rest: Record<string, unknown>): string {
  const others = JSON.stringify(rest);
  return `{"default":${pythonNumber(value)}${others === "{}" ? "}" : `,${others.slice(1)}`}`;
}

/** The value string of an intermediate (PERIODICAL) result: `{default, ...payload}`. */
export function encodeIntermediate(value: number, payload: PayloadV1): string {
  return withDefault(value, payload as unknown as Record<string, unknown>);
}

/** The value string of the final result: the number, or the object with `default` first. */
export function encodeFinal(value: FinalValue): string {
  if (typeof value === "number") return pythonNumber(value);
  const { default: main, ...rest } = value;
  return withDefault(main, rest);
}
