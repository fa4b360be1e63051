/** Calibration of rule thresholds against recorded traces (`bttackler calibrate`): pure logic, no I/O, no clock. */
export * from "./outcome.js";
export * from "./split.js";
export * from "./study.js";
export * from "./candidates.js";
export * from "./search.js";
export * from "./config-diff.js";
export * from "./report.js";
export * from "./calibrate.js";
