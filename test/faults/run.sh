#!/bin/sh
# `npm run test:faults:hosts`: the host fault tests — real Optuna studies, real NNI 3.0 experiments
# (nnictl create --foreground) and a real Ray Tune study on a local Ray cluster while the service of this checkout
# gets kill -9 or is slowed down by a delaying TCP proxy; see test/faults/test_optuna_faults.py,
# test/faults/test_nni_faults.py and test/faults/test_ray_faults.py. Run from anywhere in the repository. Builds
# the service when dist/ is missing; prepares .venv with adapters/python/scripts/venv.sh (NNI 3.0, Optuna and Ray
# from PyPI among the extras). Extra arguments go to pytest (e.g. -k optuna).
# FAULTS_MARGIN (seconds, default 0.5) is what a call may take beyond the adapter's timeout.
set -eu
cd "$(dirname "$0")/../.."
if [ ! -f dist/cli/main.js ]; then
  npm run build
fi
sh adapters/python/scripts/venv.sh
started=$(date +%s)
status=0
.venv/bin/python -m pytest test/faults -p no:cacheprovider -q -rA -o faulthandler_timeout=600 "$@" || status=$?
echo "test:faults:hosts: $(( $(date +%s) - started )) s" >&2
if [ "$status" -eq 5 ]; then
  echo "test:faults:hosts: pytest collected no tests (exit code 5); that is a failure here" >&2
  exit 1
fi
exit "$status"
