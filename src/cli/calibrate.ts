/** `bttackler calibrate`: replays recorded traces (bttackler.trace.v1) to choose rule thresholds within a false-kill budget. */
import { writeFileSync } from "node:fs";
import type { Writable } from "node:stream";
import { isDeepStrictEqual, parseArgs } from "node:util";
import { calibrate, calibrateAcrossTasks, calibrationTrial, configDiff, addFirstLine, type CalibrationTrial } from "../calibration/index.js";
import type { StudyConfig } from "../diagnosis/types.js";
import { readTraceFile, type TraceTrial } from "../replay/trace-format.js";
import { defaultConfig, resolveConfig } from "../schema/validate.js";
import { loadConfigFile } from "./config-file.js";
import { UsageError } from "./usage.js";

export const CALIBRATE_HELP = `Usage: bttackler calibrate [--budget R] [--config FILE] [--passes N] [--out FILE] TRACES...

Replays recorded traces (bttackler.trace.v1 JSON lines, plain or gzipped, as written by
npm run bench:record) to choose rule thresholds whose false-kill rate stays within a budget.

  split        trials with an even index calibrate, odd ones evaluate; only the calibration
               half influences the choice, the evaluation half is reported for information
  outcome      a trial's final val_acc (never test accuracy); hopeless = non-finite or failed,
               or final val_acc <= 0.2; top quartile = final val_acc in the split's best 25 %
               (docs/benchmarks.md, "Outcomes": one definition with the HPO simulator)
  simulation   all trials of a split interleaved by step through one diagnosis engine, as a
               live study with cohort protection sees them; a trial ends at its first stop
  search       coordinate descent over the rule families (NF excluded): per family a grid
               of its main threshold(s), persistence, protectable, and disabled; the
               candidate saving the most epochs on hopeless trials with a top-quartile
               stop rate <= R wins

  tasks        a trace line's task block names its task and objective (lines without one are
               the MNIST MLP recordings: val_acc, maximized); files of the same task are
               shards of it. With two tasks or more, leave-one-task-out: for every task,
               the search runs on the other tasks (each its own study, the budget holding
               on each) and is judged on the task left out; the config written is then
               chosen on every task together

Writes the chosen configuration (config.v1 JSON, only what differs from the defaults) to
standard output or --out, and a table of before/after figures and of each change (or of
every left-out task) on standard error. Trials that appear in several files of a task
(same index) are counted once.

Options:
  --budget R       highest share of top-quartile trials stopped, 0..1 (default 0.02)
  --config FILE    start from this configuration (config.v1 JSON) instead of the defaults
  --passes N       passes of coordinate descent over the families (default 2)
  --out FILE       write the configuration here instead of standard output
  -h, --help       show this help

Docs: docs/benchmarks.md, section "Calibration — bttackler calibrate".
`;

export interface CalibrateStreams {
  stdout: Writable;
  stderr: Writable;
}

/** The task a trace line belongs to: its task block's name, else dataset-model (the first recordings: mnist-mlp). */
export function taskNameOf(t: TraceTrial): string {
  return t.task?.name ?? `${String(t.dataset)}-${String(t.model)}`;
}

/** Runs the calibrate command; resolves to the exit code. */
export async function calibrateCommand(argv: string[], io: CalibrateStreams): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      budget: { type: "string", default: "0.02" },
      config: { type: "string" },
      passes: { type: "string", default: "2" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    io.stdout.write(CALIBRATE_HELP);
    return 0;
  }
  const budget = Number(values.budget);
  if (values.budget.trim() === "" || !Number.isFinite(budget) || budget < 0 || budget > 1) {
    throw new UsageError(`--budget must be a number from 0 to 1, got ${JSON.stringify(values.budget)}`);
  }
  const passes = Number(values.passes);
  if (!Number.isInteger(passes) || passes < 1 || passes > 10) {
    throw new UsageError(`--passes must be an integer from 1 to 10, got ${JSON.stringify(values.passes)}`);
  }
  if (positionals.length === 0) throw new UsageError("calibrate needs at least one trace file (see bttackler calibrate --help)");
  const start = values.config === undefined ? defaultConfig() : loadConfigFile(values.config);

  const byTask = new Map<string, Map<number, CalibrationTrial>>();
  for (const file of positionals) {
    let trials: TraceTrial[];
    try {
      trials = readTraceFile(file).trials;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (typeof code === "string" && code.startsWith("E")) throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
      throw new UsageError((err as Error).message);
    }
    for (const t of trials) {
      const name = taskNameOf(t);
      let task = byTask.get(name);
      if (task === undefined) {
        task = new Map();
        byTask.set(name, task);
      }
      let trial: CalibrationTrial;
      try {
        trial = calibrationTrial(t);
      } catch (err) {
        throw new UsageError(`${file}: trial ${t.trial}: ${(err as Error).message}`);
      }
      const first = task.values().next().value as CalibrationTrial | undefined;
      if (first !== undefined && !isDeepStrictEqual(first.goal, trial.goal)) {
        throw new UsageError(`${file}: trial ${t.trial} of task ${name} has another objective than the task's first trial`);
      }
      addFirstLine(task, trial);
    }
  }
  const total = [...byTask.values()].reduce((n, t) => n + t.size, 0);
  if (total === 0) throw new UsageError(`no trials in ${positionals.join(", ")}`);

  let chosen: StudyConfig;
  if (byTask.size === 1) {
    const result = calibrate([...([...byTask.values()][0] as Map<number, CalibrationTrial>).values()], start, { budget, passes });
    io.stderr.write(`${total} trials (${result.calibration.trials} calibration, ${result.evaluation.trials} evaluation), ${result.simulations} simulated studies\n\n`);
    io.stderr.write(result.report);
    chosen = result.config;
  } else {
    const tasks = [...byTask].map(([name, trials]) => ({ name, trials: [...trials.values()] }));
    const result = calibrateAcrossTasks(tasks, start, { budget, passes });
    io.stderr.write(`${total} trials in ${tasks.length} tasks (${tasks.map((t) => `${t.name} ${t.trials.length}`).join(", ")}), ${result.simulations} simulated studies\n\n`);
    io.stderr.write(result.report);
    chosen = result.config;
  }
  const diff = configDiff(chosen, defaultConfig());
  const check: StudyConfig = resolveConfig(diff, "calibrated config");
  if (!isDeepStrictEqual(check, chosen)) throw new Error("internal: the written config does not resolve to the chosen one");
  const text = `${JSON.stringify(diff, null, 2)}\n`;
  if (values.out === undefined) io.stdout.write(text);
  else {
    try {
      writeFileSync(values.out, text);
    } catch (err) {
      throw new UsageError(`cannot write --out ${values.out}: ${(err as Error).message}`);
    }
  }
  return 0;
}

