#!/usr/bin/env bash
# Benchmark (not a test): ONNX Runtime against PyTorch itself and against tract, model by model.
# Sweeps scenarios/runtimes.toml once per bundled model, with the mix set to that model alone (the
# others stay loaded and idle), into reports/runtimes/<model>/, then prints a table: throughput under
# ort, torch and tract at equal workers, and the ratios. Installs torch into .venv and builds bench
# with the tract feature when they are missing (the first build takes ~8 min on 2 cores).
# Usage: scripts/runtimes.sh [bench sweep flags, e.g. --duration 2s]   (~6 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --torch --tract
ROOT="$PWD"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
MODELS="linear mlp resnet_small encoder_small mixed_inputs"
for m in $MODELS; do
  # Paths made absolute, so the copy can live elsewhere; the mix names one model.
  sed -e "s|\"\.\./|\"$ROOT/|g" -e "s|^python_path = \"\.\.\"|python_path = \"$ROOT\"|" \
      -e "s|^mix = .*|mix = { $m = 1 }|" -e "s|^name = \"runtimes\"|name = \"runtimes-$m\"|" \
      scenarios/runtimes.toml > "$TMP/$m.toml"
  # --force: a re-run replaces the table's earlier results.
  target/release/bench sweep --quiet --scenario "$TMP/$m.toml" --out "reports/runtimes/$m" --force "$@" > /dev/null
done
.venv/bin/python - $MODELS <<'PY'
import csv, sys
print("| model | workers | ort req/s | torch req/s | tract req/s | ort / torch | ort / tract "
      "| ort compute p50 | torch compute p50 | tract compute p50 |")
print("|---|---|---|---|---|---|---|---|---|---|")
for m in sys.argv[1:]:
    rows = [r for r in csv.DictReader(open(f"reports/runtimes/{m}/results.csv")) if r["model"] == m]
    by = {(r["runtime"], r["workers"]): r for r in rows}
    for w in sorted({r["workers"] for r in rows}, key=int):
        o, t, r = by[("ort", w)], by[("torch", w)], by[("tract", w)]
        ro, rt, rr = (float(x["throughput_rps"]) for x in (o, t, r))
        us = lambda x: f"{float(x['compute_p50_us']):.0f} µs"
        print(f"| {m} | {w} | {ro:,.0f} | {rt:,.0f} | {rr:,.0f} | {ro / rt:.1f}× | {ro / rr:.2f}× "
              f"| {us(o)} | {us(t)} | {us(r)} |")
PY
