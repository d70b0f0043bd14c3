#!/usr/bin/env bash
# The main job: set up what is missing, then sweep the bundled scenario.
#   scripts/run.sh                      -> reports/ensemble/results.csv, run.json
#   scripts/run.sh --out DIR            -> any `bench sweep` flag is passed through
#   BENCH_SHARD=1/4 scripts/run.sh      -> only shard 1 of 4 (`--shard 1/4`); merge with `bench merge`
#   scripts/run.sh --tract --scenario S -> built with the tract runtime first (cargo feature `tract`)
set -euo pipefail
cd "$(dirname "$0")/.."
SETUP=()
if [ "${1:-}" = --tract ]; then
  SETUP=(--tract)
  shift
fi
scripts/setup.sh "${SETUP[@]}"
exec target/release/bench sweep --scenario "${BENCH_SCENARIO:-scenarios/ensemble.toml}" \
    ${BENCH_SHARD:+--shard "$BENCH_SHARD"} "$@"
