#!/bin/sh
# `npm run e2e:ray` (after `npm run build`): the Ray Tune end-to-end test on a real local Ray cluster (2 CPUs, no
# dashboard, no usage stats), real numpy trainings (test/e2e/ray/trainables.py) and the real service of this
# checkout. Run from anywhere in the repository. Prepares .venv with adapters/python/scripts/venv.sh (Ray from PyPI
# among the extras). Extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/../.."
if [ ! -f dist/cli/main.js ]; then
  echo "e2e:ray: dist/cli/main.js is missing; run npm run build first" >&2
  exit 1
fi
sh adapters/python/scripts/venv.sh
started=$(date +%s)
status=0
RAY_USAGE_STATS_ENABLED=0 .venv/bin/python -m pytest test/e2e/ray -p no:cacheprovider -q -rs -o faulthandler_timeout=300 "$@" || status=$?
echo "e2e:ray: $(( $(date +%s) - started )) s" >&2
if [ "$status" -eq 5 ]; then
  echo "e2e:ray: pytest collected no tests (exit code 5); that is a failure here" >&2
  exit 1
fi
exit "$status"
