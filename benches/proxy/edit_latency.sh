#!/usr/bin/env bash
# Config edit -> live in `gloo run` (BENCHMARKS.md: <= 100 ms). See edit_latency.py.
#   benches/proxy/edit_latency.sh [rounds=20]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
(cd "$root" && cargo build --release -p gloo-proxy --bin gloo)
exec python3 "$here/edit_latency.py" "$root/target/release/gloo" "${1:-20}"
