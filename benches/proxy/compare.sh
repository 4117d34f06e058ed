#!/usr/bin/env bash
# The data-plane comparison of BENCHMARKS.md in one run: gloo-proxy against nginx, HAProxy and
# Envoy with /work/shared/bench/peers.sh (each proxy on CPU 1 with one worker, wrk on CPU 0, one
# nginx backend on 127.0.0.1:18081), then the ratios the targets are stated in.
#
#   benches/proxy/compare.sh [seconds=10] [connections=32] [rounds=1]
#
# With rounds > 1, peers.sh runs that many times in a row and the ratios are taken between the
# medians of each proxy's figures: on a host whose CPU time per request drifts by 10% from one
# minute to the next, one round's ratio says less than the median of three.
#
# gloo runs twice: `gloo run` on the one-route config (127.0.0.1:18090) and on the 1,000-route /
# 100-upstream config from gen_many_routes.py (127.0.0.1:18091), both with `--workers 1`.
# `proxy_floor` (floor.rs: a bare tokio loop that copies heads and bodies, with no HTTP work)
# runs beside them on 127.0.0.1:18092 as a reference: its ratio to nginx is the best any proxy
# on this runtime could show here, since the kernel's share of each request is the same for all.
# Needs nginx, haproxy and wrk (installed with apt-get when missing) and Envoy: $ENVOY, else the
# project's .tools/venv (scripts/test.sh installs it), else peers.sh installs its own.
# The machines are shared and noisy: compare the ratios, not the absolute numbers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
peers=${PEERS:-/work/shared/bench/peers.sh}
dur=${1:-10}; conns=${2:-32}; rounds=${3:-1}
export PATH="$PATH:/usr/sbin:/sbin"

missing=()
for tool in nginx haproxy wrk; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}"
fi
if [ -z "${ENVOY:-}" ]; then
  ENVOY=$(ls "$root"/.tools/venv/lib/python3*/site-packages/envoy/_bin/envoy 2>/dev/null | head -1 || true)
fi
[ -n "$ENVOY" ] && export ENVOY

(cd "$root" && cargo build --release -p gloo-proxy --bin gloo && cargo build --release -p gloo-benches --bin proxy_floor)
gloo="$root/target/release/gloo"
floor="$root/target/release/proxy_floor"
work=$(mktemp -d /tmp/gloo-compare.XXXX)
trap 'rm -rf "$work"' EXIT
python3 "$here/gen_many_routes.py" "$work/1k" 18091

out="$work/peers.txt"
for round in $(seq "$rounds"); do
  [ "$rounds" -gt 1 ] && echo "round $round of $rounds"
  bash "$peers" "$dur" "$conns" \
    "gloo=exec $gloo run --config $here/one-route --workers 1 --admin 127.0.0.1:19090" \
    "gloo-1k=exec $gloo run --config $work/1k --workers 1 --admin 127.0.0.1:19091" \
    "floor=exec $floor 127.0.0.1:18092 127.0.0.1:18081" | tee -a "$out"
done

python3 - "$out" <<'PY'
import re, sys
import statistics

def ms(v):  # wrk latency: 850.00us, 1.23ms, 1.20s
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", v)
    return float(m[1]) * {"us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4}[m[2]]

# Each proxy's figures, one entry a round: CPU us per request and p99 in ms.
rows = {}
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) == 5 and parts[1].startswith("rps="):
        fields = dict(p.split("=", 1) for p in parts[1:])
        row = rows.setdefault(parts[0], {"cpu": [], "p99": []})
        row["cpu"].append(float(fields["cpu_us_per_req"]))
        row["p99"].append(ms(fields["p99"]))
rounds = max((len(r["cpu"]) for r in rows.values()), default=0)
if rounds > 1:
    print(f"\nmedians of {rounds} rounds:")
    for name, row in rows.items():
        print(f"  {name:<8} CPU {statistics.median(row['cpu']):5.1f} us per request"
              f"  p99 {statistics.median(row['p99']):5.2f} ms")

def ratio(label, a, b, key, target):
    if a in rows and b in rows:
        x, y = statistics.median(rows[a][key]), statistics.median(rows[b][key])
        verdict = "meets" if x / y <= target else "misses"
        print(f"  {label:<34} {x / y:5.2f}  (target <= {target}: {verdict})")
    else:
        print(f"  {label:<34}   n/a  (missing {a if a not in rows else b})")

print("\nratios, same run" + (f" (medians of {rounds} rounds):" if rounds > 1 else ":"))
ratio("gloo/nginx CPU us per request", "gloo", "nginx", "cpu", 0.9)
ratio("gloo/haproxy CPU us per request", "gloo", "haproxy", "cpu", 0.9)
ratio("gloo/envoy CPU us per request", "gloo", "envoy", "cpu", 0.4)
ratio("gloo/nginx p99", "gloo", "nginx", "p99", 1.0)
ratio("gloo 1k routes / 1 route CPU", "gloo-1k", "gloo", "cpu", 1.1)
if "floor" in rows and "nginx" in rows:
    x, y = statistics.median(rows["floor"]["cpu"]), statistics.median(rows["nginx"]["cpu"])
    print(f"  {'reference: proxy_floor/nginx CPU':<34} {x / y:5.2f}  (a copy loop with no HTTP work)")
PY
