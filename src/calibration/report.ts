/** The calibration table written to standard error: figures before/after per split, and each family's decision. */
import type { FamilyDecision } from "./search.js";
import type { StudyConfig } from "../diagnosis/types.js";
import type { StudyFigures } from "./study.js";

const pct = (n: number, d: number): string => (d === 0 ? "—" : `${((100 * n) / d).toFixed(1)} %`);

export function figuresCells(f: StudyFigures): string[] {
  return [
    `${f.topQuartileStopped}/${f.topQuartile} (${pct(f.topQuartileStopped, f.topQuartile)})`,
    `${f.hopelessCaught}/${f.hopeless} (${pct(f.hopelessCaught, f.hopeless)})`,
    `${f.epochsSaved}/${f.epochs} (${pct(f.epochsSaved, f.epochs)})`,
    `${f.hopelessEpochsSaved}`,
  ];
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

export interface CalibrationReport {
  budget: number;
  calibration: { trials: number; before: StudyFigures; after: StudyFigures };
  evaluation: { trials: number; before: StudyFigures; after: StudyFigures };
  decisions: FamilyDecision[];
}

export function formatReport(r: CalibrationReport): string {
  const head = ["split", "config", "top-quartile trials stopped", "hopeless stopped by mid-training", "epochs saved", "hopeless epochs saved"];
  const summary = table(head, [
    [`calibration (${r.calibration.trials} trials)`, "before", ...figuresCells(r.calibration.before)],
    [`calibration (${r.calibration.trials} trials)`, "after", ...figuresCells(r.calibration.after)],
    [`evaluation (${r.evaluation.trials} trials, not used to choose)`, "before", ...figuresCells(r.evaluation.before)],
    [`evaluation (${r.evaluation.trials} trials, not used to choose)`, "after", ...figuresCells(r.evaluation.after)],
  ]);
  const changed = r.decisions.filter((d) => d.change !== "");
  const decisions = table(
    ["pass", "family", "change", "top-quartile stopped", "hopeless epochs saved", "other epochs saved", "candidates within budget"],
    changed.map((d) => [
      String(d.pass),
      d.family,
      d.change,
      `${d.before.topQuartileStopped} → ${d.after.topQuartileStopped}`,
      `${d.before.hopelessEpochsSaved} → ${d.after.hopelessEpochsSaved}`,
      `${d.before.otherEpochsSaved} → ${d.after.otherEpochsSaved}`,
      `${d.withinBudget}/${d.candidates}`,
    ]),
  );
  const unchanged = [...new Set(r.decisions.map((d) => d.family))].filter((f) => !changed.some((d) => d.family === f));
  return [
    `False-kill budget: top-quartile stop rate <= ${(100 * r.budget).toFixed(1)} % on the calibration split.`,
    "",
    summary,
    "",
    changed.length === 0 ? "No family changed." : `Changes (figures on the calibration split, before → after the change):\n\n${decisions}`,
    unchanged.length > 0 ? `\nKept as they were: ${unchanged.join(", ")}.` : "",
    "",
  ].join("\n");
}

export interface CrossTaskReport {
  budget: number;
  folds: { task: string; config: StudyConfig; before: StudyFigures; after: StudyFigures; passes: boolean }[];
  perTask: { task: string; before: StudyFigures; after: StudyFigures }[];
  /** How a chosen config differs from the start, as JSON. */
  configDiffOf: (config: StudyConfig) => string;
}

export function formatCrossTaskReport(r: CrossTaskReport): string {
  const head = ["task left out", "config", "top-quartile trials stopped", "hopeless stopped by mid-training", "epochs saved", "hopeless epochs saved", "passes"];
  const folds = table(
    head,
    r.folds.flatMap((f) => [
      [f.task, "start", ...figuresCells(f.before), ""],
      [f.task, "chosen on the others", ...figuresCells(f.after), f.passes ? "yes" : "**no**"],
    ]),
  );
  const chosen = r.folds.map((f) => `- left out ${f.task}: ${r.configDiffOf(f.config)}`).join("\n");
  const all = table(
    ["task", "config", "top-quartile trials stopped", "hopeless stopped by mid-training", "epochs saved", "hopeless epochs saved"],
    r.perTask.flatMap((t) => [
      [t.task, "start", ...figuresCells(t.before)],
      [t.task, "chosen on every task", ...figuresCells(t.after)],
    ]),
  );
  const failing = r.folds.filter((f) => !f.passes).map((f) => f.task);
  return [
    `Leave-one-task-out, false-kill budget: top-quartile stop rate <= ${(100 * r.budget).toFixed(1)} % on every task.`,
    "",
    folds,
    "",
    "Chosen on the other tasks (what differs from the start config):",
    chosen,
    "",
    failing.length === 0 ? "Every fold passes on its left-out task." : `Folds that fail on their left-out task: ${failing.join(", ")}.`,
    "",
    "The config written (chosen on every task together), on each task:",
    "",
    all,
    "",
  ].join("\n");
}
