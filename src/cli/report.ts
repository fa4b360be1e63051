/** `bttackler report`: a self-contained HTML page of the studies in a service's database. */
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import type { Writable } from "node:stream";
import { parseArgs } from "node:util";
import { renderReportHtml, type ChartLibrary } from "../report/html.js";
import { StudyReportBuilder, type ReportModel, type StudyReport } from "../report/model.js";
import { StudyLogError, StudyLogReader } from "../store/study-log.js";
import { createProgress, type ProgressStream } from "./progress.js";
import { UsageError } from "./usage.js";

export const REPORT_HELP = `Usage: bttackler report --db FILE [--out FILE] [--study NAME]...

Writes one self-contained HTML page (no network needed to view it, works from file://)
about the studies in a bttackler service database: per study the trial counts, the
symptoms detected, loss and accuracy curves coloured by verdict, a per-layer gradient
heat map of a chosen trial, and a table of the trials with their state, stop step,
symptoms and reason. The database is opened read-only: a service may be running on it.

Options:
  --db FILE        the service's SQLite database (bttackler serve --db FILE); required
  --out FILE       the page to write (default report.html; "-" writes it to standard output)
  --study NAME     only this study; repeat for several (default: every study)
  -h, --help       show this help

A summary line goes to standard error; on a terminal, a progress bar while reading
large databases. See docs/report.md.
`;

export interface ReportStreams {
  stdout: Writable;
  stderr: Writable & ProgressStream;
}

/** Databases with more events than this show a progress bar while they are read (on a terminal). */
const PROGRESS_MIN_EVENTS = 20_000;

/** uPlot's browser build, style and licence, read from the installed package. */
export function loadChartLibrary(): ChartLibrary {
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve("uplot/package.json"));
  return {
    script: readFileSync(join(dir, "dist", "uPlot.iife.min.js"), "utf8"),
    style: readFileSync(join(dir, "dist", "uPlot.min.css"), "utf8"),
    license: readFileSync(join(dir, "LICENSE"), "utf8"),
  };
}

/** Reads the studies (all, or those named) of the database as one snapshot and builds their reports. */
function readReports(db: string, names: readonly string[] | undefined, stderr: ReportStreams["stderr"]): StudyReport[] {
  let reader: StudyLogReader;
  try {
    reader = new StudyLogReader(db);
  } catch (err) {
    if (err instanceof StudyLogError) throw new UsageError(`--db: ${err.message}`);
    throw err;
  }
  try {
    return reader.snapshot((r) => {
      const all = r.studies();
      const missing = (names ?? []).filter((n) => !all.some((s) => s.study === n));
      if (missing.length > 0) {
        const known = all.length === 0 ? "it has no studies" : `its studies: ${all.map((s) => JSON.stringify(s.study)).join(", ")}`;
        throw new UsageError(`no study ${missing.map((n) => JSON.stringify(n)).join(", ")} in ${db}; ${known}`);
      }
      const chosen = names === undefined ? all : all.filter((s) => names.includes(s.study));
      const counts = chosen.map((s) => r.eventCount(s.study));
      const total = counts.reduce((a, b) => a + b, 0);
      const progress = total > PROGRESS_MIN_EVENTS ? createProgress(stderr, { label: "report", total, unit: "items" }) : undefined;
      let done = 0;
      try {
        return chosen.map((study) => {
          const builder = new StudyReportBuilder(study);
          for (const event of r.events(study.study)) {
            builder.add(event);
            if (++done % 1000 === 0) progress?.update(done);
          }
          return builder.build();
        });
      } finally {
        progress?.finish();
      }
    });
  } finally {
    reader.close();
  }
}

/** Writes the page next to its destination, then renames it: a reader never sees half a page. */
function writeAtomically(path: string, text: string): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(temp, text);
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw new UsageError(`cannot write --out ${path}: ${(err as Error).message}`);
  }
}

/** Runs the report command; resolves to the exit code. */
export async function reportCommand(argv: string[], io: ReportStreams, now: () => Date = () => new Date()): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      db: { type: "string" },
      out: { type: "string", default: "report.html" },
      study: { type: "string", multiple: true },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    io.stdout.write(REPORT_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`report takes no positional arguments, got ${positionals.join(" ")}; the database is --db FILE`);
  if (values.db === undefined) throw new UsageError("report needs --db FILE (the service's database); run bttackler report --help");
  const studies = readReports(values.db, values.study, io.stderr);
  const model: ReportModel = { source: basename(values.db), generatedAt: now().toISOString(), studies };
  const html = renderReportHtml(model, loadChartLibrary());
  if (values.out === "-") {
    await new Promise<void>((resolve, reject) => io.stdout.write(html, (err) => (err ? reject(err) : resolve())));
  } else {
    writeAtomically(values.out, html);
  }
  const trials = studies.reduce((n, s) => n + s.counts.trials, 0);
  const stopped = studies.reduce((n, s) => n + s.counts.stopped, 0);
  const where = values.out === "-" ? "standard output" : values.out;
  io.stderr.write(
    `bttackler report: wrote ${where} (${studies.length} ${studies.length === 1 ? "study" : "studies"}, ${trials} trials, ${stopped} stopped, ${formatSize(Buffer.byteLength(html))})\n`,
  );
  return 0;
}

function formatSize(bytes: number): string {
  return bytes < 1_000_000 ? `${(bytes / 1000).toFixed(0)} kB` : `${(bytes / 1_000_000).toFixed(1)} MB`;
}
