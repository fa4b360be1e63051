/** Load with a crash, reduced (100 clients × 10 steps): SIGKILL in the middle loses nothing acknowledged and changes no verdict. */
import { expect, it } from "vitest";
import { runLoadCrash } from "./load-crash-run.js";

it("loses no acknowledged report and no verdict when the service is killed under load and restarted", async () => {
  const summary = await runLoadCrash({ clients: 100, steps: 10, killAt: 0.5, log: () => {} });
  expect(summary.problems).toEqual([]);
  expect(Number.isFinite(summary.killedAfterS)).toBe(true);
  expect(summary.acknowledgedBeforeKill).toBeGreaterThanOrEqual(500);
  expect(summary.acknowledged).toBe(1000);
  expect(summary.storedReports).toBe(1000);
  expect(summary.missingFromDatabase).toBe(0);
  expect(summary.verdictsDifferingFromStore).toBe(0);
  expect(summary.verdictsDifferingFromReplay).toBe(0);
  expect(summary.resends).toBeGreaterThanOrEqual(summary.unansweredAtKill);
}, 120_000);
