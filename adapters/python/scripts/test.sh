#!/bin/sh
# `npm run test:python`: runs the Python client's tests (against dist/, so build first) in .venv.
# Makes .venv with python3 -m venv when it is missing, and installs -e adapters/python[test,nni,optuna]
# into it when the install is missing, points at another checkout, or pyproject.toml changed.
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
  "$PY" -c 'import os, sys, bttackler, websockets.sync.client, pytest, nni, optuna; sys.exit(os.path.dirname(os.path.realpath(bttackler.__file__)) != os.path.realpath("adapters/python/bttackler"))' 2>/dev/null
}
if [ "$want" != "$have" ] || ! installed_here; then
  rm -f "$STAMP"
  "$PY" -m pip install --quiet --disable-pip-version-check -e "adapters/python[test,nni,optuna]"
  installed_here || { echo "test:python: adapters/python is not importable from .venv after the install" >&2; exit 1; }
  printf '%s\n' "$want" > "$STAMP"
fi
status=0
"$PY" -m pytest adapters/python/tests -q "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "test:python: pytest collected no tests (exit code 5); that is a failure here" >&2
  exit 1
fi
exit "$status"
