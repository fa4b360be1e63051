#!/bin/sh
# `npm run e2e:optuna` (after `npm run build`): the Optuna end-to-end test on real Optuna, real Node.js trials
# (docs/examples/mnist/train.js) and the real service of this checkout. Run from anywhere in the repository.
#
# Prepares .venv with adapters/python/scripts/venv.sh (Optuna from PyPI among the extras). The PostgreSQL part
# runs when Debian's postgresql package is installed (initdb/pg_ctl); it then installs psycopg2-binary from PyPI.
# BTTACKLER_E2E_POSTGRES=1 makes PostgreSQL required, =0 leaves it out. Extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
if [ ! -f dist/cli/main.js ]; then
  echo "e2e:optuna: dist/cli/main.js is missing; run npm run build first" >&2
  exit 1
fi
sh adapters/python/scripts/venv.sh
pg_installed() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
if [ "${BTTACKLER_E2E_POSTGRES:-}" != "0" ] && pg_installed && ! "$PY" -c 'import psycopg2' 2>/dev/null; then
  "$PY" -m pip install --quiet --disable-pip-version-check "psycopg2-binary>=2.9,<3" || echo "e2e:optuna: psycopg2-binary could not be installed; PostgreSQL is left out" >&2
fi
started=$(date +%s)
status=0
"$PY" -m pytest test/e2e/optuna -p no:cacheprovider -q -rs -o faulthandler_timeout=300 "$@" || status=$?
echo "e2e:optuna: $(( $(date +%s) - started )) s" >&2
if [ "$status" -eq 5 ]; then
  echo "e2e:optuna: pytest collected no tests (exit code 5); that is a failure here" >&2
  exit 1
fi
exit "$status"
