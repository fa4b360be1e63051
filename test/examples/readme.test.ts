/** README.md as a user reads it: its library snippet runs as written, and the demo's figures have one source. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as lib from "../../src/index.js";

const README = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
const QUICKSTART = readFileSync(new URL("../../docs/quickstart.md", import.meta.url), "utf8");

/** The first ```ts block after `marker`. */
function snippetAfter(marker: string): string {
  const at = README.indexOf(marker);
  expect(at, `README has "${marker}"`).toBeGreaterThan(-1);
  const block = /```ts\n([\s\S]*?)```/.exec(README.slice(at));
  if (block?.[1] === undefined) throw new Error(`no ts block after "${marker}"`);
  return block[1];
}

/** Runs the snippet with `line` defined and `import {...} from "bttackler"` bound to this checkout's package; returns what it logged. */
function run(snippet: string, line: string): string[] {
  const imports = /^import \{([^}]+)\} from "bttackler";$/m;
  expect(snippet).toMatch(imports);
  const body = snippet.replace(imports, "const {$1} = lib;");
  const logged: string[] = [];
  const console = { log: (...args: unknown[]) => logged.push(args.map(String).join(" ")) };
  new Function("lib", "line", "console", body)(lib, line, console);
  return logged;
}

describe("README.md", () => {
  const snippet = snippetAfter("From TypeScript the same engine is a library");

  it("library snippet: a payload line with a NaN token (as Python writes it) stops the trial with its reason", () => {
    const line = '{"step": 0, "max_steps": 20, "metrics": {"train_loss": NaN}}';
    expect(run(snippet, line)).toEqual(["NF non_finite_metric: metric train_loss is not finite"]);
  });

  it("library snippet: a healthy line logs nothing", () => {
    expect(run(snippet, '{"step": 0, "metrics": {"train_loss": 2.3}}')).toEqual([]);
  });

  it("quotes no demo figures of its own: it links to the one run kept in docs/quickstart.md", () => {
    expect(README).not.toMatch(/Saved by pruning|Best test accuracy:|took \d+ min/);
    expect(README).toContain("(docs/quickstart.md#a-real-run)");
    expect(QUICKSTART).toContain("\n## A real run\n");
    expect(QUICKSTART).toMatch(/Saved by pruning: +\d+\.\d %/);
  });
});
