/** Short human names of the symptom codes, as docs/symptoms.md titles them. */
import type { SymptomCode } from "../diagnosis/types.js";

export const SYMPTOM_NAMES: Readonly<Record<SymptomCode, string>> = {
  NF: "non-finite values",
  EG: "exploding gradient",
  VG: "vanishing gradient",
  DR: "dying ReLU (zero gradients)",
  DEAD: "dead units",
  SAT: "saturated activations",
  UWR: "update-to-weight ratio",
  DIV: "divergence",
  SC: "slow convergence",
  HO: "heavy oscillation",
  OF: "overfitting",
  NMG: "no more gain",
  LAG: "lagging behind the cohort",
  PROG: "prognosis: cannot reach the top",
};
