#!/usr/bin/env bash
# Benchmark (not a test): the worker pool's per-request overhead against its floor, measured side by
# side in one run on the Linear(10, 1) model:
#   in_process     Session::run in the same process (no IPC)
#   socket_rtt     a bare 64-byte round trip to an echo process over a Unix socket
#   pool           one request at a time through a 1-worker pool, pipe transfer
#   pool_overhead  pool latency minus the worker's compute time, per request
# Usage: scripts/overhead.sh [--iterations N] [--model FILE]; writes reports/overhead.csv too.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p reports
exec target/release/bench calibrate --csv reports/overhead.csv "$@"
