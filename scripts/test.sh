#!/usr/bin/env bash
# The whole test suite: set up what is missing, then run every test (unit, property, end-to-end).
# The torch runtime's tests run the real PyTorch, so the pinned torch is installed too (--torch), and
# the tests are built with the tract runtime (cargo feature `tract`). The scenario checks also run
# once without it, as `scripts/run.sh` builds bench, so that build's answer to a tract scenario is tested.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_SKIP_BUILD=1 scripts/setup.sh --test --torch
cargo test --all-targets --features tract "$@"
cargo test --lib --quiet scenario::
