#!/usr/bin/env bash
# Installs what bench needs, skipping what is already there (safe to run again):
#   - .venv, a Python virtualenv with the pinned ONNX Runtime wheel (onnxruntime==1.31.1) and numpy;
#   - with --torch: the pinned PyTorch (torch==2.15.0, 5.3 GiB with its CUDA wheels) in .venv, for the
#     torch runtime and scripts/export_models.py (scripts/test.sh passes it; scripts/run.sh does not);
#   - the release build of bench (target/release/bench); with --tract, built with the tract runtime
#     (cargo feature `tract`: about 8 more minutes on 2 cores, once).
# With --test (scripts/test.sh passes it), also what only the tests use:
#   - the python `hdrhistogram` package in .venv, an independent reader of the .hlog files;
#   - Debian's `chromium` (/usr/bin/chromium), to open report.html headless (apt-get, as root).
# Needs: a Rust toolchain, python3 with venv and pip, and access to PyPI and crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION=1.31.1
HDRH_VERSION=0.10.8
TORCH_VERSION=2.15.0
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
if ! "$PY" -c "import onnxruntime, numpy, sys; sys.exit(onnxruntime.__version__ != '$ORT_VERSION')" 2>/dev/null; then
  echo "setup: installing onnxruntime==$ORT_VERSION and numpy into .venv" >&2
  "$PY" -m pip install -q --disable-pip-version-check "onnxruntime==$ORT_VERSION" numpy
fi
LIB=$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so."$ORT_VERSION" 2>/dev/null | head -1 || true)
if [ -z "$LIB" ]; then
  echo "setup: onnxruntime is installed but libonnxruntime.so.$ORT_VERSION is missing from it" >&2
  exit 2
fi
if [ "$TEST_DEPS" = 1 ]; then
  if ! "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('hdrhistogram') != '$HDRH_VERSION')" 2>/dev/null; then
    echo "setup: installing hdrhistogram==$HDRH_VERSION into .venv" >&2
    "$PY" -m pip install -q --disable-pip-version-check "hdrhistogram==$HDRH_VERSION"
  fi
  if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "setup: the tests need /usr/bin/chromium; install it as root: apt-get install chromium" >&2
      exit 2
    fi
    echo "setup: installing chromium (apt-get)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
fi
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
  echo "setup: installing torch==$TORCH_VERSION into .venv (5.3 GiB with its CUDA wheels)" >&2
  "$PY" -m pip install -q --disable-pip-version-check --no-cache-dir "torch==$TORCH_VERSION"
fi
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release --quiet "${FEATURES[@]}"
fi
