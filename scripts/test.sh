#!/usr/bin/env bash
# The whole test suite: set up what is missing, then run every test (unit, property, end-to-end).
# The torch runtime's tests run the real PyTorch, so the pinned torch is installed too (--torch).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_SKIP_BUILD=1 scripts/setup.sh --test --torch
cargo test --all-targets "$@"
