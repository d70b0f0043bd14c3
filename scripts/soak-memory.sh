#!/usr/bin/env bash
# Soak (a benchmark, not a test): the parent's memory must stay flat over long runs. Drives a
# zero-time synthetic model through one worker for 100,000 and then 10,000,000 requests and compares
# the parent's resident memory at the end of each (run.json: points[].parent_rss_mib).
# Usage: scripts/soak-memory.sh [REQUESTS]   (default 10000000; about a minute on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_SKIP_BUILD=0 scripts/setup.sh
N="${1:-10000000}"
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
run() {
  cat > "$DIR/s.toml" <<TOML
[[model]]
name = "zero"
synthetic = { mean = "0s", wait = "spin" }
[workload]
warmup_requests = 0
requests = $1
[load]
concurrency = 64
TOML
  target/release/bench sweep --quiet --scenario "$DIR/s.toml" --out "$DIR/out-$1" > /dev/null
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['points'][0]['parent_rss_mib'])" "$DIR/out-$1/run.json"
}
small=$(run 100000)
large=$(run "$N")
python3 - "$small" "$large" "$N" <<'PY'
import sys
small, large, n = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
ratio = large / small
print(f"parent RSS after 100,000 requests: {small:.1f} MiB; after {n:,}: {large:.1f} MiB; ratio {ratio:.2f} (target <= 2)")
sys.exit(0 if ratio <= 2 else 1)
PY
