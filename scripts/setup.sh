#!/usr/bin/env bash
# Installs what bench needs, skipping what is already there (safe to run again):
#   - .venv, a Python virtualenv with the packages pinned in requirements/run.txt (the ONNX Runtime
#     wheel onnxruntime==1.31.1, numpy);
#   - with --torch: requirements/torch.txt (torch==2.15.0, 5.3 GiB with its CUDA wheels, and the
#     onnxscript its exporter needs) in .venv, for the torch runtime and scripts/export_models.py
#     (scripts/test.sh passes it; scripts/run.sh does not);
#   - the release build of bench (target/release/bench); with --tract, built with the tract runtime
#     (cargo feature `tract`: about 8 more minutes on 2 cores, once).
# With --test (scripts/test.sh passes it), also what only the tests use:
#   - requirements/test.txt in .venv (hdrhistogram, an independent reader of the .hlog files; onnx);
#   - Debian's `chromium` (/usr/bin/chromium), to open report.html headless (apt-get, as root).
# Needs: a Rust toolchain, python3 with venv and pip, and access to PyPI and crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION=1.31.1
PY=.venv/bin/python
TEST_DEPS=0
WITH_TORCH=0
FEATURES=()
for arg in "$@"; do
  case "$arg" in
    --test) TEST_DEPS=1 ;;
    --torch) WITH_TORCH=1 ;;
    --tract) FEATURES=(--features tract) ;;
    *) echo "setup: unknown option $arg (known: --test, --torch, --tract)" >&2; exit 2 ;;
  esac
done

if [ ! -x "$PY" ]; then
  echo "setup: creating .venv" >&2
  python3 -m venv .venv
fi
# Installs a requirements file unless every `name==version` in it is already installed.
install() {
  local file=$1
  if ! "$PY" - "$file" <<'PY' 2>/dev/null; then
import importlib.metadata as m, sys
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        name, version = line.split("==")
        if m.version(name) != version:
            sys.exit(1)
PY
    echo "setup: installing $file into .venv" >&2
    "$PY" -m pip install -q --disable-pip-version-check --no-cache-dir -r "$file"
  fi
}
install requirements/run.txt
LIB=$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so."$ORT_VERSION" 2>/dev/null | head -1 || true)
if [ -z "$LIB" ]; then
  echo "setup: onnxruntime is installed but libonnxruntime.so.$ORT_VERSION is missing from it" >&2
  exit 2
fi
if [ "$TEST_DEPS" = 1 ]; then
  install requirements/test.txt
  if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "setup: the tests need /usr/bin/chromium; install it as root: apt-get install chromium" >&2
      exit 2
    fi
    echo "setup: installing chromium (apt-get)" >&2
    # Waits for another package install (a fresh machine's own updates) instead of failing.
    . scripts/lib/debian.sh
    debian_install chromium
  fi
fi
TORCH_VERSION=$(sed -n 's/^torch==//p' requirements/torch.txt)
if [ "$WITH_TORCH" = 1 ] && ! "$PY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  # PyPI has only the CUDA build for Linux: 5.3 GiB installed (torch, triton, the nvidia-* wheels),
  # and pip holds the 3 GiB of downloads in its temporary directory while it installs them.
  need_gib=9
  for dir in .venv "${TMPDIR:-/tmp}"; do
    avail_gib=$(( $(df -Pk "$dir" | awk 'NR == 2 { print $4 }') / 1048576 ))
    if [ "$avail_gib" -lt "$need_gib" ]; then
      echo "setup: installing torch==$TORCH_VERSION needs about $need_gib GiB free, but $(df -P "$dir" | awk 'NR == 2 { print $6 }') (holding $dir) has $avail_gib GiB; free some space (or point TMPDIR elsewhere) and run again" >&2
      exit 2
    fi
  done
  echo "setup: installing requirements/torch.txt (torch==$TORCH_VERSION) into .venv (5.3 GiB with its CUDA wheels)" >&2
  "$PY" -m pip install -q --disable-pip-version-check --no-cache-dir -r requirements/torch.txt
fi
ONNXSCRIPT_VERSION=$(sed -n 's/^onnxscript==//p' requirements/torch.txt)
if [ "$WITH_TORCH" = 1 ] && ! "$PY" -c "import onnxscript, sys; sys.exit(onnxscript.__version__ != '$ONNXSCRIPT_VERSION')" 2>/dev/null; then
  # A .venv whose torch came before onnxscript was pinned: torch stays, the exporter's part comes.
  echo "setup: installing onnxscript==$ONNXSCRIPT_VERSION into .venv (torch.onnx.export needs it)" >&2
  "$PY" -m pip install -q --disable-pip-version-check --no-cache-dir -r requirements/torch.txt
fi
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release --quiet "${FEATURES[@]}"
fi
