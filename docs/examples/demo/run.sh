#!/bin/sh
# `npm run demo`: an Optuna study of docs/examples/mnist/train.js pruned by bttackler, from a fresh clone.
#
# Needs Node.js 20+ with npm, and Python 3.9+ (python3 with venv and pip). Installs what is missing or stale:
#   - npm ci, when node_modules is missing or does not match package-lock.json (npm ci also builds dist/);
#   - npm run build, when dist/ is missing or older than src/;
#   - .venv with Optuna and the bttackler Python adapter (adapters/python/scripts/venv.sh, from PyPI).
# Then runs docs/examples/demo/demo.py; extra arguments go to it (`npm run demo -- --trials 4 --epochs 3`,
# `npm run demo -- --help`; `npm run demo -- --backend tensorflow` trains on @tensorflow/tfjs-node when
# `npm run setup:tfjs-node` installed it). Run from anywhere in the repository.
set -eu
cd "$(dirname "$0")/../../.."

say() { printf 'demo: %s\n' "$*"; }
fail() { printf 'demo: %s\n' "$*" >&2; exit 1; }
started=$(date +%s)

command -v node >/dev/null 2>&1 || fail "needs Node.js 20 or later: node is not on PATH"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  fail "needs Node.js 20 or later, found $(node --version)"
command -v npm >/dev/null 2>&1 || fail "needs npm (it comes with Node.js)"
command -v python3 >/dev/null 2>&1 || fail "needs Python 3.9 or later: python3 is not on PATH"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' ||
  fail "needs Python 3.9 or later, found $(python3 --version 2>&1)"

# node_modules matches package-lock.json when npm's own record of what it installed
# (node_modules/.package-lock.json) has the same version of every package the lock file lists
# (optional ones may be absent: they are not installed on every platform). Packages beyond the
# lock file are left alone: `npm run setup:tfjs-node` adds @tensorflow/tfjs-node and its
# dependencies with --no-save, and an `npm ci` here would remove them.
npm_up_to_date() {
  node -e '
    const fs = require("fs");
    const read = (f) => JSON.parse(fs.readFileSync(f, "utf8")).packages || {};
    let want, have;
    try { want = read("package-lock.json"); have = read("node_modules/.package-lock.json"); } catch { process.exit(1); }
    for (const [path, entry] of Object.entries(want)) {
      if (path === "") continue;
      const got = have[path];
      if (got ? got.version !== entry.version : !(entry.optional || entry.devOptional)) process.exit(1);
    }
  ' 2>/dev/null
}

# dist/ is stale when a file of src/ (or tsconfig.json) is newer than its entry point; tsc rewrites every output
dist_up_to_date() {
  [ -f dist/cli/main.js ] && [ -z "$(find src tsconfig.json -newer dist/cli/main.js -print 2>/dev/null | head -n 1)" ]
}

if ! npm_up_to_date; then
  say "installing the npm packages (npm ci; it builds dist/ too)"
  npm ci --no-audit --no-fund
fi
if ! dist_up_to_date; then
  say "building (npm run build)"
  npm run build --silent
fi
if [ ! -x .venv/bin/python ]; then
  say "creating .venv and installing Optuna and the bttackler Python adapter from PyPI (takes a minute or two)"
else
  say "checking .venv (Optuna and the bttackler Python adapter)"
fi
sh adapters/python/scripts/venv.sh
say "ready in $(( $(date +%s) - started )) s"
exec .venv/bin/python docs/examples/demo/demo.py "$@"
