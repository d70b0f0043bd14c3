#!/usr/bin/env bash
# Nightly regression check, as a CI job would run it: sweep the bundled scenario, publish the HTML
# report, compare against the committed baseline, and exit with `bench compare`'s status:
#   0 no regression, 1 a regression, 2 could not run or compare.
#
#   scripts/nightly.sh                     -> reports/nightly/<UTC time>/{results.csv,report,compare.md}
#   scripts/nightly.sh --duration 2s       -> extra arguments go to `bench sweep`
#
# Environment (all optional):
#   BENCH_SCENARIO      scenario to sweep             (default scenarios/nightly.toml)
#   BENCH_BASELINE      results to compare against    (default reports/baseline)
#   BENCH_OUT           results folder of this run    (default reports/nightly/<UTC time>)
#   BENCH_THRESHOLD     percent, see `bench compare`  (default 10)
#   BENCH_METRICS       see `bench compare`           (default throughput,p50,p99)
#   GITHUB_STEP_SUMMARY set by GitHub Actions: the markdown comparison is appended to it
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bench=target/release/bench
scenario=${BENCH_SCENARIO:-scenarios/nightly.toml}
baseline=${BENCH_BASELINE:-reports/baseline}
out=${BENCH_OUT:-reports/nightly/$(date -u +%Y%m%dT%H%M%SZ)}

# On a VM an idle vCPU can take milliseconds to wake, which swamps sub-millisecond latencies with
# noise: hold CPU wake-up latency at 0 when allowed (root), as the baseline was recorded.
qos=()
if [ -w /dev/cpu_dma_latency ]; then qos=(--cpu-dma-latency 0); fi

# A sweep with invalid points (exit 1) is still compared: the comparison marks the invalid side.
status=0
"$bench" sweep --quiet --scenario "$scenario" --out "$out" "${qos[@]}" "$@" || status=$?
if [ "$status" -ge 2 ]; then
  echo "nightly: the sweep could not run or was interrupted (exit $status)" >&2
  exit "$status"
fi

# The HTML report of this run; a failure here is reported but does not hide the comparison.
"$bench" report "$out" || echo "nightly: \`bench report $out\` failed; comparing anyway" >&2

status=0
"$bench" compare "$baseline" "$out" \
  --threshold "${BENCH_THRESHOLD:-10}" \
  --metrics "${BENCH_METRICS:-throughput,p50,p99}" \
  --markdown "$out/compare.md" || status=$?
if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$out/compare.md" ]; then
  cat "$out/compare.md" >> "$GITHUB_STEP_SUMMARY"
fi
echo "nightly: results in $out (exit $status)" >&2
exit "$status"
