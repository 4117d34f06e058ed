#!/usr/bin/env bash
# Does a noisy API saturating shard A raise shard B's latency? Runs this directory's control
# plane and shards A and B (gloo proxy) over two nginx backends, measures shard B's p50/p99
# under a steady load alone, then again while wrk saturates shard A. Shard A, its backend and
# its load generator are pinned to CPU 0; shard B, its backend and its load generator to CPU 1.
# Prints the numbers; asserts nothing.
# Usage: noisy_neighbour.sh [seconds]   (GLOO=path/to/gloo, default target/release/gloo)
# Needs: wrk, nginx (apt).
set -u
cd "$(dirname "$0")"
DUR=${1:-10}
GLOO=${GLOO:-../../target/release/gloo}
[ -x "$GLOO" ] || { echo "no gloo binary at $GLOO: cargo build --release -p gloo-proxy --bin gloo, or set GLOO" >&2; exit 1; }
W=$(mktemp -d /tmp/noisy.XXXX); chmod 755 "$W"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
head -c 1024 /dev/zero | tr '\0' 'x' > "$W/body"
for b in 18081 18082; do
  cat > "$W/backend-$b.conf" <<C
daemon off; worker_processes 1; pid $W/$b.pid; error_log $W/$b.err;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:$b; location / { root $W; try_files /body =404; } } }
C
done
# The shipped config on these ports, with more headroom in the circuit breakers: the point here
# is CPU and scheduling isolation, not overflow.
mkdir -p "$W/config"
for f in control-plane/*.yaml; do
  sed -e 's/maxConnections: 2, maxPendingRequests: 2/maxConnections: 256, maxPendingRequests: 1024/' \
    "$f" > "$W/config/$(basename "$f")"
done
taskset -c 0 nginx -c "$W/backend-18081.conf" -p "$W" & pids+=($!)
taskset -c 1 nginx -c "$W/backend-18082.conf" -p "$W" & pids+=($!)
"$GLOO" control-plane --config "$W/config" --xds-addr 127.0.0.1:9977 --ratelimit-server off 2>"$W/cp.log" & pids+=($!)
sleep 1
taskset -c 0 "$GLOO" proxy --xds http://127.0.0.1:9977 --role gloo-system~shard-a --admin 127.0.0.1:19101 --workers 1 2>"$W/a.log" & pids+=($!)
taskset -c 1 "$GLOO" proxy --xds http://127.0.0.1:9977 --role gloo-system~shard-b --admin 127.0.0.1:19102 --workers 1 2>"$W/b.log" & pids+=($!)
for i in $(seq 50); do
  curl -sf -o /dev/null localhost:8081/orders && curl -sf -o /dev/null localhost:8082/catalog && break
  sleep 0.2
done
curl -sf -o /dev/null localhost:8081/orders && curl -sf -o /dev/null localhost:8082/catalog \
  || { echo "the shards do not answer"; cat "$W"/*.log; exit 1; }
measure() { # label
  out=$(taskset -c 1 wrk -t1 -c4 -d"${DUR}s" --latency http://127.0.0.1:8082/catalog 2>&1)
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}'); p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  echo "$1: shard B rps=$rps p50=$p50 p99=$p99"
}
taskset -c 1 wrk -t1 -c4 -d2s http://127.0.0.1:8082/catalog >/dev/null 2>&1  # warm-up
measure "shard A idle     "
taskset -c 0 wrk -t1 -c64 -d"$((DUR + 2))s" http://127.0.0.1:8081/orders > "$W/noisy.txt" 2>&1 & noisy=$!
sleep 1
measure "shard A saturated"
wait $noisy
echo "noisy load on shard A: $(awk '/Requests\/sec/ {print $2}' "$W/noisy.txt") req/s"; grep -E "Non-2xx|requests in" "$W/noisy.txt"
