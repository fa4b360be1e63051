#!/bin/sh
# Makes sure .venv (at the repository root) holds this package, editable, with every extra that the
# tests, the end-to-end runs and the benchmarks use: [test,nni,optuna,ray,bench,torch,lightning,hf]. torch==2.13.0
# (the CPU build) goes in first, alone, so that nothing depending on torch makes pip choose another build. Creates .venv with
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
  "$PY" -c 'import importlib.util, os, sys, bttackler, websockets.sync.client, pytest, nni, optuna, ray.tune, matplotlib; sys.exit(not all(importlib.util.find_spec(m) for m in ("torch", "sklearn", "lightning", "transformers", "accelerate")) or os.path.dirname(os.path.realpath(bttackler.__file__)) != os.path.realpath("adapters/python/bttackler"))' 2>/dev/null
}
if [ "$want" != "$have" ] || ! installed_here; then
  rm -f "$STAMP"
  # torch depends on setuptools without a bound; NNI 3.0's nnictl imports pkg_resources, which setuptools 81 removed
  "$PY" -m pip install --quiet --disable-pip-version-check torch==2.13.0 "setuptools<81"
  "$PY" -m pip install --quiet --disable-pip-version-check -e "adapters/python[test,nni,optuna,ray,bench,torch,lightning,hf]"
  installed_here || { echo "venv: adapters/python is not importable from .venv after the install" >&2; exit 1; }
  printf '%s\n' "$want" > "$STAMP"
fi
