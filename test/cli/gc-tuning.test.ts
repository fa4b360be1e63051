/** serve's V8 tuning: pretenuring off unless the user chose either way on the command line or in NODE_OPTIONS. */
import { describe, expect, it } from "vitest";
import { gcTuningFlag, PRETENURING_OFF } from "../../src/cli/gc-tuning.js";

describe("gcTuningFlag", () => {
  it("turns allocation-site pretenuring off by default", () => {
    expect(gcTuningFlag([], undefined)).toBe(PRETENURING_OFF);
    expect(gcTuningFlag(["--max-semi-space-size=64"], "--enable-source-maps")).toBe(PRETENURING_OFF);
  });

  it.each([
    [["--allocation-site-pretenuring"], undefined],
    [["--no-allocation-site-pretenuring"], undefined],
    [[], "--max-old-space-size=4096 --allocation_site_pretenuring"],
    [[], "--no-allocation-site-pretenuring"],
  ])("leaves the flag alone when it is given (execArgv %j, NODE_OPTIONS %j)", (execArgv, nodeOptions) => {
    expect(gcTuningFlag(execArgv, nodeOptions)).toBeUndefined();
  });
});
