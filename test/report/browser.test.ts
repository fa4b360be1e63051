/**
 * The report page in a real browser: Debian's Chromium, headless, driven by playwright-core.
 * A real service records a study, `bttackler report` writes the page, Chromium opens it from
 * file:// with every non-file request aborted and recorded, and the test checks that the charts
 * were drawn (pixels in the verdict colours), the tables are there, the heat map redraws for
 * another trial, names stay text, and nothing was fetched. It saves a screenshot of the page.
 *
 * Skipped, with a message, when no Chromium binary is found, unless BTTACKLER_REQUIRE_BROWSER
 * is set (CI): then a missing browser fails the test. BTTACKLER_CHROMIUM names the binary.
 * The screenshot goes to docs/images/report.png when BTTACKLER_UPDATE_SCREENSHOT is set or
 * that file does not exist yet; otherwise to the test's temporary folder (so that a test run
 * does not rewrite a committed image with a new timestamp in it).
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI } from "../service/harness.js";
import { EXPLODING, HEALTHY, NON_FINITE, STUDY, recordStudy, type RecordedStudy } from "./study-fixture.js";

const CHROMIUM_CANDIDATES = [process.env.BTTACKLER_CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"];
const chromiumPath = CHROMIUM_CANDIDATES.find((p): p is string => p !== undefined && p !== "" && existsSync(p));
const required = process.env.BTTACKLER_REQUIRE_BROWSER !== undefined && process.env.BTTACKLER_REQUIRE_BROWSER !== "";
const SCREENSHOT = fileURLToPath(new URL("../../docs/images/report.png", import.meta.url));
const SCREENSHOT_MAX_BYTES = 400 * 1024;

/** The flags a closed network needs: without the background-networking ones Chromium stalls on start-up. */
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** The little of the DOM the page functions below use (test/ is typechecked without the DOM library). */
interface PageCanvas {
  width: number;
  height: number;
  getContext(kind: "2d"): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
  toDataURL(): string;
}
interface PageSelect {
  options: ArrayLike<{ text: string }>;
}
interface PageGlobals {
  cspViolations: string[];
  document: { addEventListener(type: "securitypolicyviolation", listener: (e: { blockedURI: string }) => void): void };
}

const STOPPED_RGB: [number, number, number] = [0xd6, 0x27, 0x28];
const COMPLETE_RGB: [number, number, number] = [0x2a, 0x9d, 0x4a];

if (chromiumPath === undefined && !required) {
  console.warn(
    "report browser test skipped: no Chromium binary (looked for BTTACKLER_CHROMIUM, /usr/bin/chromium, /usr/bin/chromium-browser); " +
      "install it with `apt-get install -y chromium`, or set BTTACKLER_REQUIRE_BROWSER=1 to make this a failure",
  );
}

function runReport(db: string, out: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, "report", "--db", db, "--out", out], (err, _stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve()));
  });
}

/** How many pixels of a canvas are within `tolerance` of a colour in every channel. */
function countPixels(page: Page, selector: string, rgb: [number, number, number], tolerance = 40): Promise<number[]> {
  return page.$$eval(
    selector,
    (canvases, [r, g, b, tol]) =>
      (canvases as unknown as PageCanvas[]).map((canvas) => {
        const pixels = canvas.getContext("2d")?.getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 0; pixels !== undefined && i < pixels.length; i += 4) {
          if ((pixels[i + 3] ?? 0) > 200 && Math.abs((pixels[i] ?? 0) - r) <= tol && Math.abs((pixels[i + 1] ?? 0) - g) <= tol && Math.abs((pixels[i + 2] ?? 0) - b) <= tol) n++;
        }
        return n;
      }),
    [rgb[0], rgb[1], rgb[2], tolerance] as const,
  );
}

/** How many pixels of a canvas are painted (not transparent, not white). */
function paintedPixels(page: Page, selector: string): Promise<number> {
  return page.$eval(selector, (canvas) => {
    const c = canvas as unknown as PageCanvas;
    const pixels = c.getContext("2d")?.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; pixels !== undefined && i < pixels.length; i += 4) {
      if ((pixels[i + 3] ?? 0) > 0 && ((pixels[i] ?? 0) < 250 || (pixels[i + 1] ?? 0) < 250 || (pixels[i + 2] ?? 0) < 250)) n++;
    }
    return n;
  });
}

describe.skipIf(chromiumPath === undefined && !required)("the report page in headless Chromium", { timeout: 180_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "bttackler-report-browser-"));
  let recorded: RecordedStudy;
  let context: BrowserContext;
  const outside: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (chromiumPath === undefined) throw new Error("BTTACKLER_REQUIRE_BROWSER is set but no Chromium binary was found: apt-get install -y chromium");
    recorded = await recordStudy();
    await recorded.stop();
    context = await chromium.launchPersistentContext(join(dir, "profile"), {
      executablePath: chromiumPath,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1280, height: 900 },
      deviceScaleFactor: 1,
      timeout: 120_000,
    });
    // every request that is not the page's own file is aborted and recorded
    await context.route(
      (url) => url.protocol !== "file:",
      async (route) => {
        outside.push(route.request().url());
        await route.abort();
      },
    );
    context.on("request", (request) => {
      if (!request.url().startsWith("file:")) outside.push(request.url());
    });
  }, 180_000);

  afterAll(async () => {
    await context?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("draws the curves, the heat map and the tables from file:// without a single request", async () => {
    const out = join(dir, "report.html");
    await runReport(recorded.db, out);
    const page = await context.newPage();
    page.on("pageerror", (err) => pageErrors.push(err.message));
    page.on("console", (msg) => {
      if (msg.type() === "error") pageErrors.push(msg.text());
    });
    // blocked by the page's CSP instead of reaching the router: recorded too
    await page.addInitScript(() => {
      const page = globalThis as unknown as PageGlobals;
      page.cspViolations = [];
      page.document.addEventListener("securitypolicyviolation", (e) => page.cspViolations.push(e.blockedURI));
    });
    await page.goto(pathToFileURL(out).href);
    await page.waitForSelector("body[data-rendered]", { timeout: 30_000 });
    expect(await page.getAttribute("body", "data-rendered")).toBe("true");

    const study = page.locator("#study-0");
    expect(await study.locator("h2").textContent()).toBe(`Study ${STUDY}`);
    expect(await page.locator("img").count()).toBe(0); // the trial named with an <img> stayed text
    expect(await study.locator("table.trials tbody tr").count()).toBe(HEALTHY.length + 3);
    expect(await study.locator('table.trials tbody tr[data-outcome="stopped"]').count()).toBe(2);
    expect(await study.locator("table.symptom-counts tbody tr").count()).toBeGreaterThanOrEqual(2);

    // one uPlot chart per metric, one series per trial, lines in the stopped and complete colours
    const figures = study.locator("figure.curve");
    expect(await figures.evaluateAll((fs) => fs.map((f) => f.getAttribute("data-metric")))).toEqual(["train_loss", "val_loss", "train_acc", "val_acc"]);
    expect(await figures.evaluateAll((fs) => fs.map((f) => f.getAttribute("data-series")))).toEqual(["8", "8", "8", "8"]);
    expect(await study.locator("figure.curve .uplot canvas").count()).toBe(4);
    const red = await countPixels(page, "#study-0 figure.curve .uplot canvas", STOPPED_RGB);
    const green = await countPixels(page, "#study-0 figure.curve .uplot canvas", COMPLETE_RGB);
    for (const n of red) expect(n).toBeGreaterThan(30);
    for (const n of green) expect(n).toBeGreaterThan(30);

    const initialChoice = await page.$eval("#study-0 select.heat-trial", (s) => (s as unknown as { value: string }).value);
    // the heat map starts on the first stopped trial, framed in red at its stop step; another trial redraws it
    const heatmap = "#study-0 canvas.heatmap";
    expect(await page.getAttribute(heatmap, "data-trial")).toBe(EXPLODING);
    expect(await paintedPixels(page, heatmap)).toBeGreaterThan(5000);
    expect((await countPixels(page, heatmap, STOPPED_RGB, 10))[0]).toBeGreaterThan(50);
    const before = await page.$eval(heatmap, (c) => (c as unknown as PageCanvas).toDataURL());
    const healthyIndex = await page.$eval(`#study-0 select.heat-trial`, (s, name) => Array.from((s as unknown as PageSelect).options).findIndex((o) => o.text.startsWith(`${name} (`)), HEALTHY[0] ?? "");
    await page.selectOption("#study-0 select.heat-trial", String(healthyIndex));
    expect(await page.getAttribute(heatmap, "data-trial")).toBe(HEALTHY[0]);
    const after = await page.$eval(heatmap, (c) => (c as unknown as PageCanvas).toDataURL());
    expect(after).not.toBe(before);
    expect((await countPixels(page, heatmap, STOPPED_RGB, 10))[0]).toBe(0); // a healthy trial has no stop frame
    await page.selectOption("#study-0 select.heat-trial", { label: await page.$eval("#study-0 select.heat-trial", (s, name) => Array.from((s as unknown as PageSelect).options).find((o) => o.text.startsWith(`${name} (`))?.text ?? "", NON_FINITE) });
    expect(await page.getAttribute(heatmap, "data-trial")).toBe(NON_FINITE);

    // the second study is drawn too
    expect(await page.locator("#study-1 figure.curve .uplot canvas").count()).toBeGreaterThan(0);

    expect(pageErrors).toEqual([]);
    expect(outside).toEqual([]);
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).cspViolations)).toEqual([]);

    // the screenshot docs/report.md shows: the first study, back on the stopped trial
    await page.selectOption("#study-0 select.heat-trial", initialChoice);
    expect(await page.getAttribute(heatmap, "data-trial")).toBe(EXPLODING);
    const update = process.env.BTTACKLER_UPDATE_SCREENSHOT !== undefined || !existsSync(SCREENSHOT);
    const path = update ? SCREENSHOT : join(dir, "report.png");
    const box = await study.boundingBox();
    await page.screenshot({ path, fullPage: true, clip: { x: 0, y: 0, width: 1280, height: Math.ceil((box?.y ?? 0) + (box?.height ?? 900)) } });
    expect(statSync(path).size).toBeLessThan(SCREENSHOT_MAX_BYTES);
    await page.close();
  });
});
