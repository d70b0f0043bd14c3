#!/usr/bin/env bash
# The whole test suite: set up what is missing, then run every test (unit, property, end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_SKIP_BUILD=1 scripts/setup.sh --test
cargo test --all-targets "$@"
