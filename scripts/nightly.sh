#!/usr/bin/env bash
# Nightly regression check, as a CI job would run it: sweep a scenario (the bundled one, or your
# own models'), publish the HTML report, compare against a baseline, and exit with `bench
# compare`'s status:
#   0 no regression, 1 a regression, 2 could not run or compare.
#
#   scripts/nightly.sh                     -> reports/nightly/<UTC time>/{results.csv,report,compare.md}
#   scripts/nightly.sh --duration 2s       -> extra arguments go to `bench sweep`
#   scripts/nightly.sh --scenario my.toml --bench /usr/local/bin/bench --baseline ci/baseline
#
# Options (before the arguments for `bench sweep`; each also has its variable below):
#   --scenario FILE   the scenario to sweep; its models are yours to choose
#   --baseline DIR    the results to compare against. When DIR does not exist yet, this run
#                     becomes the baseline (copied there) and the script exits 0
#   --bench PATH      the bench binary to run: nothing is installed or built (without it,
#                     scripts/setup.sh installs what is missing and builds target/release/bench)
#   --out DIR         the results folder of this run
#
# Environment (all optional):
#   BENCH_SCENARIO      scenario to sweep             (default scenarios/nightly.toml)
#   BENCH_BASELINE      results to compare against    (default reports/baseline for the bundled
#                       scenario, reports/baseline-<scenario file's stem> for another)
#   BENCH_BIN           bench binary, as --bench      (default: build target/release/bench)
#   BENCH_OUT           results folder of this run    (default reports/nightly/<UTC time>)
#   BENCH_THRESHOLD     percent, see `bench compare`  (default 10)
#   BENCH_METRICS       see `bench compare`           (default throughput,p50,p99)
#   GITHUB_STEP_SUMMARY set by GitHub Actions: the markdown comparison is appended to it
set -euo pipefail

scenario=${BENCH_SCENARIO:-}
baseline=${BENCH_BASELINE:-}
bench=${BENCH_BIN:-}
out=${BENCH_OUT:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --scenario|--baseline|--bench|--out)
      if [ $# -lt 2 ]; then
        echo "nightly: $1 needs a value" >&2
        exit 2
      fi
      case "$1" in
        --scenario) scenario=$2 ;;
        --baseline) baseline=$2 ;;
        --bench) bench=$2 ;;
        --out) out=$2 ;;
      esac
      shift 2 ;;
    *) break ;;
  esac
done

# Paths given by the caller are read from the caller's folder; the script then works from the
# repository root, where its defaults are.
absolute() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
[ -n "$scenario" ] && scenario=$(absolute "$scenario")
[ -n "$baseline" ] && baseline=$(absolute "$baseline")
[ -n "$out" ] && out=$(absolute "$out")
if [ -n "$bench" ]; then
  case "$bench" in
    */*) bench=$(absolute "$bench") ;;
    *) bench=$(command -v "$bench" || echo "$bench") ;;
  esac
  if [ ! -x "$bench" ]; then
    echo "nightly: --bench $bench is not an executable file" >&2
    exit 2
  fi
fi
cd "$(dirname "$0")/.."

if [ -z "$bench" ]; then
  scripts/setup.sh
  bench=target/release/bench
fi
if [ -z "$scenario" ]; then
  scenario=scenarios/nightly.toml
fi
if [ -z "$baseline" ]; then
  if [ "$(realpath -m "$scenario")" = "$(realpath -m scenarios/nightly.toml)" ]; then
    baseline=reports/baseline
  else
    stem=$(basename "$scenario")
    baseline=reports/baseline-${stem%.toml}
  fi
fi
out=${out:-reports/nightly/$(date -u +%Y%m%dT%H%M%SZ)}

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

# No baseline yet (a new scenario, a new machine): this run becomes it.
if [ ! -e "$baseline" ]; then
  mkdir -p "$(dirname "$baseline")"
  cp -R "$out" "$baseline"
  echo "nightly: no baseline at $baseline: this run is the baseline now (results in $out); \
later runs compare against it" >&2
  exit 0
fi

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
