#!/usr/bin/env bash
# The whole test suite: set up what is missing, then run every test (unit, property, end-to-end).
# The torch runtime's tests run the real PyTorch, so the pinned torch is installed too (--torch), and
# the tests are built with the tract runtime (cargo feature `tract`). The scenario checks also run
# once without it, as `scripts/run.sh` builds bench, so that build's answer to a tract scenario is tested.
#
# Without arguments the end-to-end tests run in two phases (docs/development.md, "Turns"): first
# every test but the timing ones, four at a time (most of them wait on sweeps, not on the CPU), then
# the timing tests (`mod alone` in tests/it/*.rs) one at a time with nothing beside them. Arguments
# (a filter, cargo's or libtest's options) give one `cargo test` run as asked instead.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_SKIP_BUILD=1 scripts/setup.sh --test --torch
if [ "$#" -gt 0 ]; then
  cargo test --all-targets --features tract "$@"
else
  cargo test --all-targets --features tract -- --skip ::alone:: --test-threads "${BENCH_TEST_THREADS:-4}"
  cargo test --test it --features tract -- ::alone:: --test-threads 1
fi
cargo test --lib --quiet scenario::
