#!/usr/bin/env bash
# The main job: set up what is missing, then sweep the bundled scenario.
#   scripts/run.sh                      -> reports/ensemble/results.csv, run.json
#   scripts/run.sh --out DIR            -> any `bench sweep` flag is passed through
#   scripts/run.sh --scenario S         -> another scenario (or BENCH_SCENARIO=S scripts/run.sh)
#   BENCH_SHARD=1/4 scripts/run.sh      -> only shard 1 of 4 (`--shard 1/4`); merge with `bench merge`
#   scripts/run.sh --tract --scenario S -> built with the tract runtime first (cargo feature `tract`)
set -euo pipefail
cd "$(dirname "$0")/.."
SETUP=()
if [ "${1:-}" = --tract ]; then
  SETUP=(--tract)
  shift
fi
# The bundled scenario, unless the arguments name one.
SCENARIO=(--scenario "${BENCH_SCENARIO:-scenarios/ensemble.toml}")
for arg in "$@"; do
  case "$arg" in
    -s | --scenario | --scenario=*) SCENARIO=() ;;
  esac
done
scripts/setup.sh "${SETUP[@]}"
exec target/release/bench sweep "${SCENARIO[@]}" ${BENCH_SHARD:+--shard "$BENCH_SHARD"} "$@"
