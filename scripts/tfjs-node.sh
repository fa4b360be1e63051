#!/usr/bin/env bash
# `npm run setup:tfjs-node` — installs @tensorflow/tfjs-node (the native TensorFlow backend, "tensorflow")
# into node_modules WITHOUT downloading from any host but the npm registry and PyPI. (A user with internet
# just runs `npm i @tensorflow/tfjs-node`; its install script fetches libtensorflow from Google's storage,
# which machines limited to the registries cannot reach.)
#
# How: the C API that tfjs-node's addon links against (TF_*, TFE_*) ships in PyPI's tensorflow-cpu wheel
# (2.16.x: tensorflow/libtensorflow_cc.so.2 and libtensorflow_framework.so.2, headers under
# tensorflow/include). The script
#   1. downloads that wheel with pip into the cache (once) and checks its version;
#   2. extracts the two libraries and the C headers into the cache as a deps/ tree
#      (lib/libtensorflow.so{,.2,.2.9.1} -> libtensorflow_cc.so.2, as the addon's build expects);
#   3. fetches the tfjs-node tarball from the npm registry (`npm pack`, once) and installs its
#      dependencies with `npm install --no-save --ignore-scripts` (so package.json, the lock file and
#      `npm ci` stay untouched and offline-safe);
#   4. unpacks the package into a staging folder next to its final place, links deps/ to the cache,
#      compiles the addon from source (node-pre-gyp + node-gyp, Node's headers from /usr/include/node),
#      and loads it: a matrix product on the "tensorflow" backend must give the right numbers;
#   5. only then moves it into node_modules/@tensorflow/tfjs-node (replacing an older copy).
# Any failure prints one line "setup:tfjs-node: ..." (details in the log), exits 1, and leaves
# node_modules/@tensorflow/tfjs-node as it was (absent, or the previous working copy).
# Idempotent: an installed copy that loads with the right versions is kept (exit 0, nothing done).
#
# Usage: sh scripts/tfjs-node.sh [--force]     (--force rebuilds even when a working copy is installed)
# Environment:
#   BTTACKLER_TFJS_NODE_CACHE  cache folder (default: .cache/tfjs-node in the repository; git ignores .cache/)
#   BTTACKLER_TF_WHEEL         use this tensorflow-cpu wheel file instead of downloading one
#   PYTHON                     the Python whose pip downloads the wheel (default: .venv/bin/python, else python3)
# Needs: node >= 20 with its headers (/usr/include/node, Debian's nodejs package), g++, make, python3.
set -euo pipefail

TFJS_NODE_VERSION=4.22.0
TF_VERSION=2.16.2
# the file name tfjs-node 4.22's scripts/install.js looks for before it downloads libtensorflow
TFJS_NODE_LIB_MARKER=libtensorflow.so.2.9.1

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${BTTACKLER_TFJS_NODE_CACHE:-$ROOT/.cache/tfjs-node}
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    *) echo "setup:tfjs-node: unknown argument '$arg' (usage: scripts/tfjs-node.sh [--force])" >&2; exit 2 ;;
  esac
done

mkdir -p "$CACHE"
LOG=$CACHE/setup.log
: >"$LOG"
STAGE=""
fail() {
  echo "setup:tfjs-node: $* (log: $LOG)" >&2
  exit 1
}
cleanup() {
  if [ -n "$STAGE" ] && [ -e "$STAGE" ]; then rm -rf "$STAGE"; fi
  rm -rf "$CACHE"/.extract-* 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cd "$ROOT"
LIVE=$ROOT/node_modules/@tensorflow/tfjs-node

# Loads tfjs-node from directory $1 next to the project's own @tensorflow/tfjs and checks versions and numbers.
verify() {
  node --input-type=module -e '
    import { createRequire } from "node:module";
    const dir = process.argv[1], wantNode = process.argv[2], wantTf = process.argv[3];
    const require = createRequire(dir + "/package.json");
    const pkg = require("./package.json");
    if (pkg.version !== wantNode) { console.log(`@tensorflow/tfjs-node is ${pkg.version}, not ${wantNode}`); process.exit(3); }
    const projectCore = createRequire(process.cwd() + "/package.json").resolve("@tensorflow/tfjs-core");
    if (require.resolve("@tensorflow/tfjs-core") !== projectCore) { console.log("tfjs-node would load a second copy of @tensorflow/tfjs-core"); process.exit(3); }
    const tf = require(dir);
    await tf.setBackend("tensorflow");
    const native = tf.backend().binding.TF_Version;
    if (!native.startsWith(wantTf)) { console.log(`the addon runs TensorFlow ${native}, not ${wantTf}`); process.exit(3); }
    const got = Array.from(await tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]])).data());
    if (tf.getBackend() !== "tensorflow" || got.join() !== "17,39") { console.log(`tensorflow backend computed ${got} on ${tf.getBackend()}`); process.exit(3); }
    console.log(`tfjs-node ${pkg.version}, TensorFlow ${native}, backend ${tf.getBackend()}`);
  ' "$1" "$TFJS_NODE_VERSION" "$TF_VERSION"
}

if [ ! -f node_modules/@tensorflow/tfjs-core/package.json ]; then
  fail "node_modules/@tensorflow/tfjs-core is missing: run 'npm ci' first"
fi
CORE_VERSION=$(node -p 'require("./node_modules/@tensorflow/tfjs-core/package.json").version')
if [ "$CORE_VERSION" != "$TFJS_NODE_VERSION" ]; then
  fail "the project has @tensorflow/tfjs-core $CORE_VERSION; tfjs-node $TFJS_NODE_VERSION needs exactly $TFJS_NODE_VERSION (a second copy would be a second engine)"
fi

if [ "$FORCE" = 0 ] && [ -d "$LIVE" ] && verify "$LIVE" >>"$LOG" 2>&1; then
  echo "setup:tfjs-node: already installed ($(tail -n 1 "$LOG"))"
  exit 0
fi

# --- 1. the wheel -------------------------------------------------------------------------------
if [ -n "${BTTACKLER_TF_WHEEL:-}" ]; then
  WHEEL=$BTTACKLER_TF_WHEEL
  [ -f "$WHEEL" ] || fail "BTTACKLER_TF_WHEEL=$WHEEL: no such file"
else
  WHEEL=$(ls "$CACHE"/tensorflow_cpu-"$TF_VERSION"-cp*-manylinux*_x86_64.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$WHEEL" ]; then
    PY=${PYTHON:-}
    if [ -z "$PY" ]; then if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi; fi
    [ "$(uname -m)" = x86_64 ] || fail "only linux x86_64 is supported offline (this is $(uname -s) $(uname -m)); with internet use plain 'npm i @tensorflow/tfjs-node'"
    echo "setup:tfjs-node: downloading tensorflow-cpu==$TF_VERSION from PyPI (214 MB, once) ..."
    "$PY" -m pip download "tensorflow-cpu==$TF_VERSION" --no-deps --only-binary=:all: --python-version 3.11 \
      --implementation cp --platform manylinux2014_x86_64 -d "$CACHE/.download" >>"$LOG" 2>&1 ||
      fail "could not download the tensorflow-cpu==$TF_VERSION wheel from PyPI"
    for f in "$CACHE"/.download/tensorflow_cpu-*.whl; do mv "$f" "$CACHE/"; done
    rmdir "$CACHE/.download" 2>/dev/null || true
    WHEEL=$(ls "$CACHE"/tensorflow_cpu-"$TF_VERSION"-cp*-manylinux*_x86_64.whl 2>/dev/null | head -n 1 || true)
    [ -n "$WHEEL" ] || fail "pip ran but left no tensorflow_cpu-$TF_VERSION wheel in $CACHE"
  fi
fi

# --- 2. libtensorflow from the wheel -------------------------------------------------------------
# The wheel's name and version are always checked; it is unpacked only when the cache lacks its deps/ tree.
DEPS=$CACHE/libtensorflow-$TF_VERSION
EXTRACT=-
if [ ! -f "$DEPS/lib/$TFJS_NODE_LIB_MARKER" ]; then EXTRACT=$(mktemp -d "$CACHE/.extract-XXXXXX"); fi
python3 - "$WHEEL" "$TF_VERSION" "$EXTRACT" <<'PY' >>"$LOG" 2>&1 || fail "$(tail -n 1 "$LOG")"
import os, shutil, sys, zipfile
wheel, want, out = sys.argv[1:4]
try:
    z = zipfile.ZipFile(wheel)
except (OSError, zipfile.BadZipFile) as e:
    sys.exit(f"{wheel} is not a wheel (zip): {e}")
meta = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
fields = dict(l.split(": ", 1) for l in z.read(meta[0]).decode().splitlines() if ": " in l) if meta else {}
if fields.get("Name") not in ("tensorflow-cpu", "tensorflow_cpu", "tensorflow") or fields.get("Version") != want:
    sys.exit(f"{os.path.basename(wheel)} is {fields.get('Name', '?')} {fields.get('Version', '?')}, not tensorflow-cpu {want}")
if out == "-":
    sys.exit(0)
libs = {"tensorflow/libtensorflow_cc.so.2": "libtensorflow_cc.so.2", "tensorflow/libtensorflow_framework.so.2": "libtensorflow_framework.so.2"}
missing = [n for n in libs if n not in z.namelist()]
if missing:
    sys.exit(f"{os.path.basename(wheel)} lacks {', '.join(missing)}")
os.makedirs(f"{out}/lib"); os.makedirs(f"{out}/include")
for name, target in libs.items():
    with z.open(name) as src, open(f"{out}/lib/{target}", "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
headers = ("tensorflow/include/tensorflow/c/", "tensorflow/include/tensorflow/core/platform/", "tensorflow/include/tsl/")
count = 0
for info in z.infolist():
    if info.filename.startswith(headers) and not info.is_dir():
        path = f"{out}/include/{info.filename[len('tensorflow/include/'):]}"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with z.open(info) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
        count += 1
if not os.path.exists(f"{out}/include/tensorflow/c/eager/c_api.h"):
    sys.exit(f"{os.path.basename(wheel)} lacks the C headers (tensorflow/include/tensorflow/c/eager/c_api.h)")
for link in ("libtensorflow.so", "libtensorflow.so.2", "libtensorflow.so.2.9.1"):
    os.symlink("libtensorflow_cc.so.2", f"{out}/lib/{link}")
for link in ("libtensorflow_framework.so", "libtensorflow_framework.so.2.9.1"):
    os.symlink("libtensorflow_framework.so.2", f"{out}/lib/{link}")
print(f"extracted 2 libraries and {count} headers from {os.path.basename(wheel)}")
PY
if [ "$EXTRACT" != - ]; then
  rm -rf "$DEPS"
  mv "$EXTRACT" "$DEPS"
fi

# --- 3. the package and its dependencies -----------------------------------------------------------
TARBALL=$CACHE/tensorflow-tfjs-node-$TFJS_NODE_VERSION.tgz
if [ ! -f "$TARBALL" ]; then
  npm pack "@tensorflow/tfjs-node@$TFJS_NODE_VERSION" --pack-destination "$CACHE" >>"$LOG" 2>&1 ||
    fail "could not fetch @tensorflow/tfjs-node@$TFJS_NODE_VERSION from the npm registry"
fi
STAGE=$(mktemp -d "$ROOT/node_modules/@tensorflow/.tfjs-node-staging-XXXXXX")
chmod 755 "$STAGE"
tar -xzf "$TARBALL" -C "$STAGE" --strip-components=1 || fail "$TARBALL is not a readable package tarball"
# the dependencies tfjs-node declares, except @tensorflow/tfjs (the project's own copy, checked above)
mapfile -t PKG_DEPS < <(node -e '
  const deps = require(process.argv[1]).dependencies;
  for (const [n, v] of Object.entries(deps)) if (n !== "@tensorflow/tfjs") console.log(`${n}@${v}`);
' "$STAGE/package.json")
missing_deps=()
for spec in "${PKG_DEPS[@]}"; do
  name=${spec%@*}
  [ -f "node_modules/$name/package.json" ] || missing_deps+=("$spec")
done
if [ "${#missing_deps[@]}" -gt 0 ]; then
  npm install --no-save --ignore-scripts --no-audit --no-fund "${missing_deps[@]}" >>"$LOG" 2>&1 ||
    fail "npm could not install tfjs-node's dependencies (${missing_deps[*]})"
  # npm's reify may have swept the (untracked) staging folder away: unpack again if so
  [ -f "$STAGE/package.json" ] || { mkdir -p "$STAGE"; tar -xzf "$TARBALL" -C "$STAGE" --strip-components=1; }
fi

# --- 4. build and check in the staging folder -------------------------------------------------------
ln -s "$DEPS" "$STAGE/deps"
NODEDIR=${npm_config_nodedir:-/usr}
[ -f "$NODEDIR/include/node/node_api.h" ] || fail "Node's C headers are not in $NODEDIR/include/node (Debian: the nodejs package has them; or set npm_config_nodedir)"
NODE_GYP=${npm_config_node_gyp:-$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js}
[ -f "$NODE_GYP" ] || fail "node-gyp not found at $NODE_GYP (set npm_config_node_gyp)"
echo "setup:tfjs-node: compiling the tfjs-node $TFJS_NODE_VERSION addon against TensorFlow $TF_VERSION ..."
(cd "$STAGE" && npm_config_node_gyp=$NODE_GYP npm_config_nodedir=$NODEDIR \
  node "$ROOT/node_modules/@mapbox/node-pre-gyp/bin/node-pre-gyp" rebuild --build-from-source --nodedir="$NODEDIR") >>"$LOG" 2>&1 ||
  fail "building the tfjs-node addon failed"
rm -rf "$STAGE/build" # objects only; the addon itself is under lib/
verify "$STAGE" >>"$LOG" 2>&1 || fail "the freshly built tfjs-node does not work: $(tail -n 1 "$LOG")"

# --- 5. move in --------------------------------------------------------------------------------------
if [ -e "$LIVE" ]; then
  OLD=$(mktemp -d "$ROOT/node_modules/@tensorflow/.tfjs-node-old-XXXXXX")
  mv "$LIVE" "$OLD/"
  mv "$STAGE" "$LIVE"
  rm -rf "$OLD"
else
  mv "$STAGE" "$LIVE"
fi
STAGE=""
echo "setup:tfjs-node: installed node_modules/@tensorflow/tfjs-node ($(tail -n 1 "$LOG")); the 'tensorflow' backend is ready"
