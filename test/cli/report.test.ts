/**
 * `bttackler report` through the built CLI, on a database written by a real `bttackler serve`
 * that is still running on it (WAL): the page it writes, the options, the errors.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli as run } from "./run-cli.js";
import { EXPLODING, HEALTHY, NON_FINITE, OTHER_STUDY, RUNNING, STUDY, recordStudy, type RecordedStudy } from "../report/study-fixture.js";


/** The report data the page embeds, parsed back. */
function embeddedData(html: string): { studies: { trials: { trial: string; outcome: string; stopStep: number | null }[] }[] } {
  const match = /<script type="application\/json" id="bttackler-report-data">([^<]*)<\/script>/.exec(html);
  if (match?.[1] === undefined) throw new Error("no report data in the page");
  return JSON.parse(match[1]) as ReturnType<typeof embeddedData>;
}

/** The trials table rows of the page's first study: [trial cell text, state, last step, stop step, symptoms]. */
function tableRows(html: string): string[][] {
  const section = html.slice(html.indexOf('<section class="study" id="study-0">'), html.indexOf('<section class="study" id="study-1">'));
  const body = section.slice(section.indexOf('<table class="trials">'));
  return [...body.matchAll(/<tr data-outcome="[a-z]+">(.*?)<\/tr>/g)].map((m) =>
    [...(m[1] ?? "").matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((c) => (c[1] ?? "").replace(/<[^>]+>/g, "")),
  );
}

const dir = mkdtempSync(join(tmpdir(), "bttackler-report-cli-"));
let recorded: RecordedStudy;

beforeAll(async () => {
  recorded = await recordStudy();
}, 60_000);

afterAll(async () => {
  await recorded?.stop();
  rmSync(dir, { recursive: true, force: true });
});

// every run is a fresh node process: allow for a loaded machine
describe("bttackler report", { timeout: 60_000 }, () => {
  it("writes a self-contained page of every study while the service is still running on the database", async () => {
    expect(recorded.stops.get(EXPLODING)).toBeGreaterThan(0);
    expect(recorded.stops.get(NON_FINITE)).toBeGreaterThan(0);
    const out = join(dir, "all.html");
    const r = await run(["report", "--db", recorded.db, "--out", out]);
    expect(r.stderr).toContain(`wrote ${out} (2 studies, 9 trials, 2 stopped`);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    const html = readFileSync(out, "utf8");
    // nothing to fetch: no src/href to another resource, the chart library inlined, requests forbidden by the CSP
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i);
    expect(html).toContain("var uPlot=");
    expect(html).toContain("default-src 'none'");
    // user-supplied names are escaped wherever they appear
    expect(html).toContain("Study mnist &lt;b&gt;&amp;amp; friends&lt;/b&gt;");
    expect(html).not.toContain("<img src=x");
    expect(html.match(/<\/script>/g)).toHaveLength(3);

    const rows = tableRows(html);
    const byTrial = new Map(rows.map((row) => [row[0], row]));
    expect(rows).toHaveLength(HEALTHY.length + 3);
    const exploding = byTrial.get(EXPLODING.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"));
    expect(exploding?.slice(1, 5)).toEqual(["pruned", String(recorded.stops.get(EXPLODING)), String(recorded.stops.get(EXPLODING)), "EG"]);
    expect(byTrial.get(NON_FINITE)?.slice(1, 5)).toEqual(["pruned", String(recorded.stops.get(NON_FINITE)), String(recorded.stops.get(NON_FINITE)), "NF"]);
    expect(byTrial.get(RUNNING)?.slice(1, 4)).toEqual(["unfinished", "5", ""]);
    for (const t of HEALTHY) expect(byTrial.get(t)?.slice(1, 4)).toEqual(["complete", "11", ""]);

    const data = embeddedData(html);
    expect(data.studies).toHaveLength(2);
    const outcomes = Object.fromEntries(data.studies[0]?.trials.map((t) => [t.trial, t.outcome]) ?? []);
    expect(outcomes[EXPLODING]).toBe("stopped");
    expect(outcomes[RUNNING]).toBe("unfinished");
    expect(data.studies[1]?.trials.map((t) => t.trial)).toEqual(["only"]);
  });

  it("--study keeps only the named study; an unknown one is a usage error naming the known studies", async () => {
    const out = join(dir, "one.html");
    const r = await run(["report", "--db", recorded.db, "--out", out, "--study", OTHER_STUDY]);
    expect(r.code).toBe(0);
    const data = embeddedData(readFileSync(out, "utf8"));
    expect(data.studies).toHaveLength(1);
    expect(data.studies[0]?.trials.map((t) => t.trial)).toEqual(["only"]);

    const missing = await run(["report", "--db", recorded.db, "--out", join(dir, "none.html"), "--study", "nope"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`no study "nope" in ${recorded.db}; its studies: ${JSON.stringify(STUDY)}, "second"`);
    expect(existsSync(join(dir, "none.html"))).toBe(false);
  });

  it("--out - writes the page to standard output", async () => {
    const r = await run(["report", "--db", recorded.db, "--out", "-", "--study", OTHER_STUDY]);
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith("<!doctype html>")).toBe(true);
    expect(r.stderr).toContain("wrote standard output (1 study, 1 trials");
  });

  it("leaves the database as it was: it opens it read-only", async () => {
    const before = statSync(recorded.db).mtimeMs;
    const r = await run(["report", "--db", recorded.db, "--out", join(dir, "again.html")]);
    expect(r.code).toBe(0);
    expect(statSync(recorded.db).mtimeMs).toBe(before);
  });

  it("refuses a missing database, a file that is not one, a missing --db and unknown options with exit code 2", async () => {
    const notADatabase = join(dir, "not-a-database.html");
    writeFileSync(notADatabase, "<!doctype html>\n");
    const [missing, notDb, noDb, unknown, unwritable] = await Promise.all([
      run(["report", "--db", join(dir, "missing.db"), "--out", join(dir, "x.html")]),
      run(["report", "--db", notADatabase, "--out", join(dir, "x.html")]),
      run(["report"]),
      run(["report", "--db", recorded.db, "--colour", "red"]),
      run(["report", "--db", recorded.db, "--out", join(dir, "no-such-folder", "x.html")]),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^bttackler: --db: cannot open .*missing\.db/);
    expect(missing.stderr).not.toContain("    at "); // a usage error, not a crash with a stack
    expect(notDb.code).toBe(2);
    expect(notDb.stderr).toContain("bttackler: --db: cannot read");
    expect(notDb.stderr).toContain("file is not a database");
    expect(noDb.code).toBe(2);
    expect(noDb.stderr).toContain("report needs --db FILE");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("Unknown option '--colour'");
    expect(unknown.stderr).toContain("see bttackler report --help");
    expect(unwritable.code).toBe(2);
    expect(unwritable.stderr).toMatch(/^bttackler: cannot write --out .*no-such-folder.*x\.html: ENOENT/);
    expect(existsSync(join(dir, "x.html"))).toBe(false);
  });
});
