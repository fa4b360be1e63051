#!/bin/sh
# Makes sure .venv (at the repository root) holds this package, editable, with every extra that the
# tests, the end-to-end runs and the benchmarks use: [test,nni,optuna,ray,bench]. Creates .venv with
# python3 -m venv when it is missing; (re)installs when the install is missing, points at another
# checkout, or pyproject.toml changed. Quiet when nothing is to be done. Prints nothing else.
set -eu
cd "$(dirname "$0")/../../.."
PY=.venv/bin/python
STAMP=.venv/.bttackler-python-install
if [ ! -x "$PY" ]; then
  python3 -m venv .venv
fi
want="$("$PY" -c 'import hashlib, os, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest(), os.getcwd())' adapters/python/pyproject.toml)"
have="$(cat "$STAMP" 2>/dev/null || true)"
installed_here() {
  "$PY" -c 'import os, sys, bttackler, websockets.sync.client, pytest, nni, optuna, ray.tune, matplotlib; sys.exit(os.path.dirname(os.path.realpath(bttackler.__file__)) != os.path.realpath("adapters/python/bttackler"))' 2>/dev/null
}
if [ "$want" != "$have" ] || ! installed_here; then
  rm -f "$STAMP"
  "$PY" -m pip install --quiet --disable-pip-version-check -e "adapters/python[test,nni,optuna,ray,bench]"
  installed_here || { echo "venv: adapters/python is not importable from .venv after the install" >&2; exit 1; }
  printf '%s\n' "$want" > "$STAMP"
fi
