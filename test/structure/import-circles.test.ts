/** No import circles in src/ nor in the Python package (adapters/python/bttackler), type-only and lazy imports included. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { circles, pythonGraph, typescriptGraph } from "./import-graph.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** A checkout-shaped folder with the given files, removed after `check`. */
function withTree(files: Record<string, string>, check: (root: string) => void): void {
  const root = mkdtempSync(join(tmpdir(), "bttackler-circles-"));
  try {
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    check(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

describe("import circles", () => {
  it("src/ has none", () => {
    const graph = typescriptGraph(ROOT);
    expect(graph.size).toBeGreaterThan(50);
    expect(circles(graph)).toEqual([]);
  });

  it("adapters/python/bttackler has none", () => {
    const graph = pythonGraph(ROOT);
    expect(graph.get("bttackler/client.py")).toContain("bttackler/local_service.py");
    expect(circles(graph)).toEqual([]);
  });

  it("finds a circle of type-only TypeScript imports", () => {
    withTree(
      {
        "src/store/a.ts": 'import type { B } from "./b.js";\nexport type A = B[];\n',
        "src/store/b.ts": 'import { x } from "../util/c.js";\nexport type B = number;\n',
        "src/util/c.ts": 'export { type A } from "../store/a.js";\nexport const x = 1;\n',
      },
      (root) => expect(circles(typescriptGraph(root))).toEqual([["src/store/a.ts", "src/store/b.ts", "src/util/c.ts"]]),
    );
  });

  it("finds a Python circle through a lazy import, and not through a docstring's example", () => {
    withTree(
      {
        "adapters/python/bttackler/__init__.py": "from .client import Client\n",
        "adapters/python/bttackler/client.py": "from .local_service import (\n    Service,\n    START,\n)\n",
        "adapters/python/bttackler/local_service.py": "class Service:\n    def __init__(self):\n        from .client import check  # lazy\n",
        "adapters/python/bttackler/optuna/__init__.py": "from ._pruner import Pruner\n",
        "adapters/python/bttackler/optuna/_pruner.py": '"""Example:\n\n    >>> from bttackler.optuna import Pruner\n"""\nfrom .. import client\n',
      },
      (root) => expect(circles(pythonGraph(root))).toEqual([["bttackler/client.py", "bttackler/local_service.py"]]),
    );
  });
});
