/** How the report shows each trial outcome: curve colour and legend text. */
import type { TrialOutcome } from "./model.js";

export interface OutcomeStyle {
  color: string;
  label: string;
  description: string;
}

export const OUTCOME_STYLES: Readonly<Record<TrialOutcome, OutcomeStyle>> = {
  stopped: { color: "#d62728", label: "stopped", description: "stopped by bttackler" },
  protected: { color: "#f28e2b", label: "protected", description: "a symptom persisted, cohort protection held the stop back" },
  complete: { color: "#2a9d4a", label: "complete", description: "ended complete, never stopped" },
  ended: { color: "#8c8c8c", label: "pruned / failed", description: "ended pruned or failed by the host, not by bttackler" },
  unfinished: { color: "#1f77b4", label: "unfinished", description: "no end reported (running, or its host died)" },
};
