#!/usr/bin/env bash
# How often `bench compare` calls a regression, measured: its false alarms and its power.
#
#   - A/A: N runs of one unchanged scenario (default scenarios/nightly.toml), each compared as a
#     CI job on main would: against the named baseline the runs before it saved (`bench compare
#     --baseline aa --save-baseline aa`), which keeps the last 4 runs, so the spread between runs
#     enters the verdict. Two runs seed the baseline first. Every flagged run is a false alarm.
#   - +10%: N pairs of a synthetic model (one worker, 1 request in flight, a fixed 2 ms spin, 3
#     trials) against the same model at 2.2 ms. Every pair should be flagged.
#
# Each comparison uses `bench compare` as CI would, with --threshold THRESHOLD (default 5: a
# threshold at or above the 10% effect would make the +10% pairs a coin toss by design) and the
# default metrics (throughput, p50, p99); the +10% pairs need --allow-different, since the two
# scenario files differ. Prints one line per pair and a table; the runs are kept in OUT.
#
#   scripts/compare_power.sh                    # N=20: about 40 min on 2 vCPUs
#   N=5 scripts/compare_power.sh                # a quicker look
#   AA_SCENARIO=my.toml THRESHOLD=10 OUT=/tmp/p scripts/compare_power.sh
#
# Needs: a built bench (target/release/bench; BENCH to choose) and what scripts/setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-20}
THRESHOLD=${THRESHOLD:-5}
AA_SCENARIO=${AA_SCENARIO:-scenarios/nightly.toml}
OUT=${OUT:-reports/compare-power}
bench=${BENCH:-target/release/bench}
[ -x "$bench" ] || { echo "compare_power: no $bench; build it with cargo build --release" >&2; exit 2; }
rm -rf "$OUT"
mkdir -p "$OUT/aa" "$OUT/slow"

# A synthetic model whose service time is the only thing that changes.
synthetic() {
  cat <<EOF
name = "power"
[[model]]
name = "fixed"
synthetic = { service = "fixed", mean = "$1", wait = "spin" }
[workload]
warmup = "500ms"
duration = "2s"
trials = 3
EOF
}
synthetic 2ms >"$OUT/base.toml"
synthetic 2200us >"$OUT/slower.toml"

# `bench compare` of two folders: 1 when it calls a regression, 0 when not; stops on exit 2.
flagged() {
  local code=0
  "$bench" compare "$1" "$2" --threshold "$THRESHOLD" "${@:3}" >"$2.compare.txt" 2>&1 || code=$?
  case $code in
    0) echo 0 ;;
    1) echo 1 ;;
    *) echo "compare_power: bench compare $1 $2 failed:" >&2; cat "$2.compare.txt" >&2; exit 2 ;;
  esac
}

# The same against the named baseline `aa`, keeping the run as its newest run afterwards.
flagged_named() {
  local code=0
  "$bench" compare "$1" --threshold "$THRESHOLD" "${named[@]}" >"$1.compare.txt" 2>&1 || code=$?
  case $code in
    0) echo 0 ;;
    1) echo 1 ;;
    *) echo "compare_power: bench compare --baseline aa $1 failed:" >&2; cat "$1.compare.txt" >&2; exit 2 ;;
  esac
}

sweep() { # scenario out [sweep flags]
  local code=0
  # --force: a second run of this script replaces the first one's runs in $OUT.
  "$bench" sweep --quiet --scenario "$1" --out "$2" --force "${@:3}" >/dev/null 2>"$2.stderr" || code=$?
  [ "$code" -le 1 ] || { echo "compare_power: sweep of $1 failed:" >&2; cat "$2.stderr" >&2; exit 2; }
}

start=$(date +%s)
aa=0
named=(--baselines "$OUT/baselines" --baseline aa --save-baseline aa)
for seed in 1 2; do
  sweep "$AA_SCENARIO" "$OUT/aa/seed$seed" --baselines "$OUT/baselines" --save-baseline aa
done
for i in $(seq 1 "$N"); do
  sweep "$AA_SCENARIO" "$OUT/aa/$i"
  f=$(flagged_named "$OUT/aa/$i")
  aa=$((aa + f))
  echo "A/A run $i: $([ "$f" = 1 ] && echo FLAGGED || echo ok)"
done
slow=0
for i in $(seq 1 "$N"); do
  sweep "$OUT/base.toml" "$OUT/slow/base$i"
  sweep "$OUT/slower.toml" "$OUT/slow/slower$i"
  f=$(flagged "$OUT/slow/base$i" "$OUT/slow/slower$i" --allow-different)
  slow=$((slow + f))
  echo "+10% pair $i: $([ "$f" = 1 ] && echo flagged || echo MISSED)"
done
echo
echo "| experiment | pairs | flagged as a regression | threshold |"
echo "|---|---|---|---|"
echo "| A/A, $(basename "$AA_SCENARIO"), against a named baseline of the runs before | $N | $aa | ${THRESHOLD}% |"
echo "| +10% service time, synthetic | $N | $slow | ${THRESHOLD}% |"
echo
echo "$(($(date +%s) - start)) s; runs and comparisons in $OUT"
