#!/usr/bin/env bash
# The checked run on a CUDA host (about 4-5 minutes on an H200): CPU against CUDA on the bundled
# models (workers 1, 2, 4; transfer pipe, shm, device), then the classic PyTorch multiprocessing
# pool on the same GPU with the same mix and load, and the ratio between the two from this one run.
#
# The GPU host has no Rust toolchain and no onnxruntime-gpu. Build here, make the bundle once, and
# send both:
#   cargo build --release && ../shared/gpu/make-bundle .gpu
#   (on the host)  eval "$(.gpu/unpack)" && scripts/gpu-check.sh [OUT_DIR]
#
# OUT_DIR defaults to reports/h200/<UTC date>. It receives results.csv, run.json, hlog/, report.html,
# summary.md, torch_mp.csv (the baseline), gpu.txt (nvidia-smi) and verdict.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-reports/h200/$(date -u +%F)}"
BENCH="${BENCH:-target/release/bench}"
PY="${PYTHON:-python3}"
CONCURRENCY=16   # the scenario's load; the baseline runs with the same number in flight
mkdir -p "$OUT_DIR"

[ -x "$BENCH" ] || { echo "gpu-check: $BENCH is missing: build it with cargo build --release" >&2; exit 2; }
[ -n "${ORT_DYLIB_PATH:-}" ] || { echo "gpu-check: ORT_DYLIB_PATH is unset: run eval \"\$(.gpu/unpack)\" first" >&2; exit 2; }
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv > "$OUT_DIR/gpu.txt"
cat "$OUT_DIR/gpu.txt"

# 1. bench: exit 1 only means some point is invalid; the verdict below reads the rows.
set +e
"$BENCH" sweep --scenario scenarios/gpu.toml --out "$OUT_DIR" --force # a re-run replaces the day's
status=$?
set -e
[ "$status" -le 1 ] || { echo "gpu-check: bench sweep failed ($status)" >&2; exit "$status"; }
"$BENCH" report "$OUT_DIR" || echo "gpu-check: no HTML report" >&2

# 2. The PyTorch multiprocessing baseline, same models, mix and load.
"$PY" scripts/torch_mp_baseline.py --device cuda --workers 1 2 4 --concurrency "$CONCURRENCY" \
  --duration 8 | tee "$OUT_DIR/torch_mp.csv"

# 3. The verdict at 4 workers: bench on CUDA with a host-to-device copy per request (shm, the
#    like-for-like transfer) against the pool; the device transfer is shown as the floor.
"$PY" - "$OUT_DIR" <<'PY' | tee "$OUT_DIR/verdict.md"
import csv, sys, pathlib
out = pathlib.Path(sys.argv[1])
rows = [r for r in csv.DictReader(open(out / "results.csv")) if r["model"] == "all"]
base = {int(r["workers"]): r for r in csv.DictReader(open(out / "torch_mp.csv"))}
def pick(workers, transfer, provider="cuda"):
    for r in rows:
        if int(r["workers"]) == workers and r["transfer"] == transfer and r["provider"] == provider:
            return r
print("| workers | torch-mp req/s | torch-mp p99 ms | bench cuda shm req/s | p99 ms | ratio | bench cuda device req/s | bench cpu shm req/s |")
print("|---|---|---|---|---|---|---|---|")
verdict = None
for w in sorted(base):
    b, s, d, c = base[w], pick(w, "shm"), pick(w, "device"), pick(w, "shm", "cpu")
    if s is None or s["valid"] != "true":
        print(f"| {w} | {b['throughput_rps']} | {b['p99_ms']} | failed: {s and s['reason']} | | | | |")
        continue
    ratio = float(s["throughput_rps"]) / float(b["throughput_rps"])
    p99 = float(s["latency_p99_us"]) / 1e3
    print(f"| {w} | {b['throughput_rps']} | {b['p99_ms']} | {float(s['throughput_rps']):.0f} | {p99:.2f} | "
          f"{ratio:.2f}x | {d and float(d['throughput_rps']):.0f} | {c and float(c['throughput_rps']):.0f} |")
    if w == 4:
        verdict = ratio >= 3 and p99 < float(b["p99_ms"])
        print(f"\nTarget at 4 workers (>= 3x the pool's throughput with a lower p99): "
              f"{'MET' if verdict else 'NOT MET'} ({ratio:.2f}x, p99 {p99:.2f} ms vs {b['p99_ms']} ms); "
              f"pool start-up {b['startup_s']} s")
sys.exit(0 if verdict else 1)
PY
