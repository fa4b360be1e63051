#!/bin/sh
# `npm run test:python`: runs the Python package's tests (against dist/, so build first) in .venv,
# which scripts/venv.sh creates or updates first.
set -eu
cd "$(dirname "$0")/../../.."
sh adapters/python/scripts/venv.sh
status=0
# the docstring examples of the Optuna pruner, the NNI assessor and the shared modules run as doctests (from the root: they use dist/)
.venv/bin/python -m pytest adapters/python/tests -q "$@" \
  --doctest-modules adapters/python/bttackler/optuna/_pruner.py adapters/python/bttackler/nni/assessor.py adapters/python/bttackler/objective.py \
  adapters/python/bttackler/verdicts.py adapters/python/bttackler/_checks.py adapters/python/bttackler/_token.py \
  adapters/python/bttackler/private_service.py adapters/python/bttackler/optuna/_stop_record.py || status=$?
if [ "$status" -eq 5 ]; then
  echo "test:python: pytest collected no tests (exit code 5); that is a failure here" >&2
  exit 1
fi
exit "$status"
