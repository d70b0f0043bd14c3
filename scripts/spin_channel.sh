#!/usr/bin/env bash
# The spin channel against the socket, side by side in one run (issue 16's targets):
#   1. the floor on a VAD-sized model (resnet_small, ~180 µs): in-process run, bare socket and spin
#      round trips, the pool over each channel (`bench calibrate`);
#   2. scenarios/spin-channel.toml: that model, 1 request in flight, each transfer mode over each
#      channel, 1 worker (spins) and 2 workers (more threads than 2 vCPUs: parks at once);
#   3. the bundled scenario (scenarios/ensemble.toml) with `channel = ["socket", "spin"]` added, so
#      every bundled point runs beside its spin twin;
#   4. the generator's ceiling over each channel (`bench calibrate --generator`), and, with
#      BASE_BENCH=<an older bench binary>, that binary's ceiling interleaved with this one's.
# Then prints the ratios the targets name. About 6 minutes on a 2-vCPU VM; run it on a quiet
# machine (say in what you report if it was not).
#
#   scripts/spin_channel.sh
#   BASE_BENCH=/tmp/old/bench OUT=/tmp/spin scripts/spin_channel.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${BENCH:-target/release/bench}
[ -x "$bench" ] || { echo "spin_channel: no $bench; build it with cargo build --release" >&2; exit 2; }
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
echo "results in $OUT; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. The floor.
"$bench" calibrate --model models/onnx/resnet_small.onnx --iterations 5000 --csv "$OUT/floor.csv"

# 2. The VAD-sized sweep. Exit 1 (an invalid point) is data here; 2 is a failure.
code=0
"$bench" sweep --quiet -s scenarios/spin-channel.toml --out "$OUT/vad" --force >/dev/null || code=$?
[ "$code" -le 1 ] || { echo "spin_channel: the spin-channel sweep failed" >&2; exit 2; }

# 3. The bundled sweep with the channel axis. The copy sits beside the original, whose model paths
# are relative to it.
twin=scenarios/.ensemble-channels.toml
trap 'rm -f "$twin"' EXIT
sed -e 's/^name = "ensemble"/name = "ensemble-channels"/' \
    -e 's/^transfer = \["pipe"\]/transfer = ["pipe"]\nchannel = ["socket", "spin"]/' \
    scenarios/ensemble.toml >"$twin"
grep -q '^channel = ' "$twin" || { echo "spin_channel: could not add the channel axis" >&2; exit 2; }
code=0
"$bench" sweep --quiet -s "$twin" --out "$OUT/ensemble" --force >/dev/null || code=$?
[ "$code" -le 1 ] || { echo "spin_channel: the bundled sweep failed" >&2; exit 2; }

# 4. The generator's ceiling, this build and (if given) the base build in turn.
"$bench" calibrate --generator --csv "$OUT/ceiling.csv" >/dev/null
if [ -n "${BASE_BENCH:-}" ]; then
  "$BASE_BENCH" calibrate --generator --csv "$OUT/ceiling-base.csv" >/dev/null
  "$bench" calibrate --generator --csv "$OUT/ceiling-2.csv" >/dev/null
  "$BASE_BENCH" calibrate --generator --csv "$OUT/ceiling-base-2.csv" >/dev/null
fi

python3 - "$OUT" <<'PY'
import csv, glob, os, sys
out = sys.argv[1]
rows = lambda p: list(csv.DictReader(open(p)))
floor = {r["loop_name"]: r for r in rows(f"{out}/floor.csv")}
f = lambda n, k="p50_us": float(floor[n][k])
in_process_rps = 1e6 / f("in_process", "mean_us")
print("\n== floor (resnet_small, 1 in flight)")
for n in floor:
    print(f"  {n:20} p50 {f(n):8.1f} µs  p99 {f(n, 'p99_us'):8.1f} µs  mean {f(n, 'mean_us'):8.1f} µs")
print(f"  spin round trip p50: {f('spin_rtt'):.2f} µs (target <= 2)")
print(f"  pool overhead p50: socket {f('pool_overhead'):.1f} µs, spin {f('pool_spin_overhead'):.1f} µs (target <= 5)")
print(f"  in-process runs/s (1 / mean): {in_process_rps:.0f}")
print("\n== VAD-sized sweep: throughput against in-process, and CPU per request")
for r in rows(f"{out}/vad/results.csv"):
    if r["model"] != "all":
        continue
    rps = float(r["throughput_rps"])
    print(f"  {r['point_id']:26} {rps:7.0f} req/s = {rps / in_process_rps:6.1%} of in-process"
          f"  p99 {float(r['latency_p99_us']):7.0f} µs  parent {r['parent_cpu_us_per_req']:>6} µs/req"
          f"  workers {r['worker_cpu_us_per_req']:>6} µs/req  cores {r['cores_used']}")
print("\n== bundled sweep: spin twin against socket (throughput and p99, spin / socket)")
alls = {r["point_id"]: r for r in rows(f"{out}/ensemble/results.csv") if r["model"] == "all"}
for pid, r in alls.items():
    if r["channel"] != "socket":
        continue
    twin = pid.replace("-pipe-", "-pipe-spin-")
    s = alls.get(twin)
    if not s:
        continue
    over = r["oversubscribed"] == "true"
    tput = float(s["throughput_rps"]) / float(r["throughput_rps"])
    p99 = float(s["latency_p99_us"]) / float(r["latency_p99_us"])
    print(f"  {pid:22} throughput {tput:6.3f}x  p99 {p99:6.3f}x  cores {r['cores_used']} -> {s['cores_used']}"
          f"{'  (more threads than CPUs)' if over else ''}")
print("\n== generator ceiling (zero-time model, 1 worker): requests/s, parent CPU µs/request")
for path in sorted(glob.glob(f"{out}/ceiling*.csv")):
    label = os.path.basename(path)[:-4]
    for r in rows(path):
        print(f"  {label:18} {r.get('channel', 'socket'):6} c{r['concurrency']:>3} {float(r['requests_per_s']):9.0f} req/s"
              f"  parent {float(r['parent_cpu_us_per_request']):6.2f} µs/req")
PY
