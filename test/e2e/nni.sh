#!/bin/sh
# `npm run e2e:nni`: real NNI 3.0 experiments (nnictl create --foreground) with the bttackler
# assessor; see test/e2e/nni/test_nni_e2e.py. Needs the built service (npm run build) and node.
# Prepares .venv with adapters/python/scripts/venv.sh (NNI 3.0 from PyPI among the extras), then runs
# the e2e tests with pytest.
set -eu
cd "$(dirname "$0")/../.."
if [ ! -f dist/cli/main.js ]; then
  echo "e2e:nni: dist/cli/main.js is missing: run npm run build first" >&2
  exit 1
fi
sh adapters/python/scripts/venv.sh
exec .venv/bin/python -m pytest test/e2e/nni -p no:cacheprovider -q -rA "$@"
