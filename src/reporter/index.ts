/** `bttackler/tfjs`: what a TensorFlow.js training script imports. */
export { tfjsReporter, trackedLayers, layersFromVariables, type TfjsReporter, type TfjsReporterOptions, type PayloadDecision, type PlainReporterCallbacks } from "./tfjs-reporter.js";
export { GradientTap, type NamedGradient, type TrackedLayer, type EpochStats, type LayerEpochStats } from "./gradient-tap.js";
