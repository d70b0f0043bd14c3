#!/usr/bin/env bash
# How well the open-loop generator keeps its schedule, option by option, side by side in one run:
# a worker with a fixed 1 ms model, open loop at RATES, under each of the options (default sleep,
# --spin 2ms, --realtime, --realtime=all), in ROUNDS interleaved rounds. Prints one line per
# option and rate: sends that lagged over 1 ms, served req/s and p99 (from the intended send time).
# Meant for a shared machine: run it while the machine does its other work (a build, say), and
# once when quiet; say which in what you report. --realtime needs root or CAP_SYS_NICE.
#
#   scripts/generator_lag.sh                      # rates 300 600 850, 2 rounds: about 2 min
#   RATES="200 400" ROUNDS=3 scripts/generator_lag.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${BENCH:-target/release/bench}
[ -x "$bench" ] || { echo "generator_lag: no $bench; build it with cargo build --release" >&2; exit 2; }
RATES=${RATES:-300 600 850}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
cat >"$OUT/gen.toml" <<TOML
name = "generator-lag"
[[model]]
name = "fixed"
synthetic = { service = "fixed", mean = "1ms" }
[workload]
warmup = "500ms"
duration = "3s"
[load]
kind = "open"
rate = [$(echo $RATES | sed 's/ /, /g')]
TOML
options=("sleep::" "spin-2ms::--spin=2ms" "realtime::--realtime" "realtime-all::--realtime=all")
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  for o in "${options[@]}"; do
    name=${o%%::*}; flag=${o#*::}
    # Exit 1 (invalid points) is data here; 2 is a failure.
    code=0
    "$bench" sweep --quiet -s "$OUT/gen.toml" --out "$OUT/$name-$round" --force $flag >/dev/null 2>"$OUT/$name-$round.stderr" || code=$?
    [ "$code" -le 1 ] || { echo "generator_lag: $name failed:" >&2; cat "$OUT/$name-$round.stderr" >&2; exit 2; }
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$OUT" "$ROUNDS" <<'PY'
import csv, sys, statistics
out, rounds = sys.argv[1], int(sys.argv[2])
names = ["sleep", "spin-2ms", "realtime", "realtime-all"]
print("| option | offered req/s | lagged sends % (each round) | served req/s (median) | p99 ms (median) |")
print("|---|---|---|---|---|")
for n in names:
    by_rate = {}
    for r in range(1, rounds + 1):
        for row in csv.DictReader(open(f"{out}/{n}-{r}/results.csv")):
            if row["model"] == "all":
                by_rate.setdefault(row["rate_rps"], []).append(row)
    for rate, rows in by_rate.items():
        lag = ", ".join(f"{float(x['lagged_sends_pct']):.1f}" for x in rows)
        served = statistics.median(float(x["throughput_rps"]) for x in rows)
        p99 = statistics.median(float(x["latency_p99_us"]) for x in rows) / 1e3
        print(f"| {n} | {float(rate):.0f} | {lag} | {served:.0f} | {p99:.1f} |")
PY
