/**
 * The import graphs of the TypeScript sources (src/) and of the Python package
 * (adapters/python/bttackler/), read from the files' text, and the circles in them.
 * Every import counts: type-only imports (the type checker follows them too) and Python
 * imports inside functions (a lazy import is still a dependency both ways).
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, posix, relative, sep } from "node:path";

export type Graph = Map<string, string[]>;

function filesUnder(dir: string, ending: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "__pycache__" && entry.name !== "node_modules") out.push(...filesUnder(path, ending));
    } else if (entry.name.endsWith(ending)) out.push(path);
  }
  return out.sort();
}

const toPosix = (p: string): string => p.split(sep).join("/");

/** src/ of a checkout: file (relative to root, .ts) -> the files of src/ it imports. */
export function typescriptGraph(root: string): Graph {
  const files = filesUnder(join(root, "src"), ".ts").map((f) => toPosix(relative(root, f)));
  const known = new Set(files);
  const graph: Graph = new Map();
  const specifier = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm;
  for (const file of files) {
    const text = readFileSync(join(root, file), "utf8");
    const targets = new Set<string>();
    for (const m of text.matchAll(specifier)) {
      const target = posix.normalize(posix.join(posix.dirname(file), (m[1] as string).replace(/\.js$/, ".ts")));
      if (known.has(target)) targets.add(target);
    }
    graph.set(file, [...targets].sort());
  }
  return graph;
}

/** adapters/python/bttackler of a checkout: module file (relative to root) -> the package's module files it imports. */
export function pythonGraph(root: string): Graph {
  const base = join(root, "adapters", "python");
  const files = filesUnder(join(base, "bttackler"), ".py").map((f) => toPosix(relative(base, f)));
  const known = new Set(files);
  const moduleFile = (dotted: string[]): string | undefined => {
    const path = dotted.join("/");
    if (known.has(`${path}.py`)) return `${path}.py`;
    if (known.has(`${path}/__init__.py`)) return `${path}/__init__.py`;
    return undefined;
  };
  const graph: Graph = new Map();
  const fromImport = /^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]*)/gm;
  const plainImport = /^[ \t]*import[ \t]+(bttackler(?:\.\w+)*)/gm;
  for (const file of files) {
    // docstrings hold example code, not imports
    const text = readFileSync(join(base, file), "utf8").replace(/("""|\'\'\')[\s\S]*?\1/g, "");
    const pkg = dirname(file).split("/");
    const targets = new Set<string>();
    const add = (dotted: string[]): void => {
      const target = moduleFile(dotted);
      if (target !== undefined && target !== file) targets.add(target);
    };
    for (const m of text.matchAll(fromImport)) {
      const dots = (m[1] as string).length;
      const name = m[2] as string;
      let start: string[];
      if (dots > 0) start = pkg.slice(0, pkg.length - (dots - 1));
      else if (name.split(".")[0] === "bttackler") start = [];
      else continue;
      const dotted = [...start, ...(name === "" ? [] : name.split("."))];
      const names = (m[3] as string).replace(/[()]/g, "").split(",").map((n) => n.trim().split(/\s+/)[0] as string).filter((n) => /^\w+$/.test(n));
      let submodules = 0;
      for (const n of names) {
        if (moduleFile([...dotted, n]) !== undefined) {
          add([...dotted, n]);
          submodules++;
        }
      }
      if (submodules < names.length) add(dotted);
    }
    for (const m of text.matchAll(plainImport)) add((m[1] as string).split("."));
    graph.set(file, [...targets].sort());
  }
  return graph;
}

/** Every circle of the graph: its strongly connected components of more than one file (Tarjan), each sorted. */
export function circles(graph: Graph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}
