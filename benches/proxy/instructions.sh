#!/usr/bin/env bash
# User-space instructions per proxied request, counted by valgrind's callgrind, for nginx,
# HAProxy and `gloo run` on the one-route config, in the setup of /work/shared/bench/peers.sh
# (backend nginx and wrk on CPU 0, each proxy on CPU 1 with one worker, 1 KiB responses).
#
#   benches/proxy/instructions.sh [seconds=5] [connections=8]
#
# GLOO_BASE=/path/to/gloo adds a second gloo build (as gloo-base) to compare a change against.
# FLOOR=1 adds `proxy_floor` (benches/proxy/floor.rs): a bare tokio proxy that only copies heads
# and bodies. KEEP=DIR keeps each proxy's callgrind profile in DIR, for callgrind_annotate.
#
# Why it exists: CPU time per request on these machines moves by 5 to 10% between runs of the
# same binary, more than most single changes to the request path. The count of instructions a
# proxy executes per request moves by about 0.1% between runs, so it shows a change of 1% as
# plainly as one of 20%, and callgrind says which function it came from. Instructions are not
# time (cache misses, branch mispredictions and the kernel are not in them): the CPU targets
# are judged with compare.sh and cpu_split.sh; this is the tool for finding and checking the
# user-space part of a change.
#
# Under callgrind each proxy runs about 50 times slower, so wrk's rate is set by the proxy. The
# count covers only the measured run: each proxy first serves a warm-up run (upstream
# connections opened, lazy state built), then callgrind's instrumentation is switched on for the
# measured run and off after it.
# Needs nginx, haproxy, wrk and valgrind (apt) and a release build of gloo (compare.sh builds it).
set -u
export PATH="$PATH:/usr/sbin:/sbin"
root=$(cd "$(dirname "$0")/../.." && pwd)
gloo="$root/target/release/gloo"
DUR=${1:-5}; CONN=${2:-8}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 1; }
. "$root/benches/proxy/peer_configs.sh"
peer_workdir instructions
# nginx as one process (no master), so callgrind follows the worker itself.
sed -i 's/^daemon off;/daemon off; master_process off;/' $W/nginx.conf
taskset -c 0 nginx -c $W/backend.conf -p $W & pids+=($!)
measure() { # name port command...
  local name=$1 port=$2; shift 2
  taskset -c 1 valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file=$W/cg.$name "$@" >$W/$name.log 2>&1 &
  local vp=$!
  for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:$port/ && break; sleep 0.3; done
  curl -sf -o /dev/null http://127.0.0.1:$port/ || { echo "$name: no answer on :$port"; kill $vp; return; }
  taskset -c 0 wrk -t1 -c$CONN -d2s http://127.0.0.1:$port/ >/dev/null 2>&1
  callgrind_control -i on $vp >/dev/null 2>&1
  local out; out=$(taskset -c 0 wrk -t1 -c$CONN -d${DUR}s http://127.0.0.1:$port/ 2>&1)
  callgrind_control -i off $vp >/dev/null 2>&1
  callgrind_control -d $vp >/dev/null 2>&1
  sleep 1
  local reqs ir
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  ir=$(cat $W/cg.$name.* 2>/dev/null | awk '/^(summary|totals):/ {s += $2} END {print s + 0}')
  kill $vp; wait $vp 2>/dev/null
  [ -n "${KEEP:-}" ] && mkdir -p "$KEEP" && cp $W/cg.$name.* "$KEEP/"
  awk -v n=$name -v ir=$ir -v r=${reqs:-0} 'BEGIN { if (r > 0) printf "%-10s %7.0f instructions/request  (%d requests)\n", n, ir / r, r }'
}
measure nginx 18082 nginx -c $W/nginx.conf -p $W
measure haproxy 18083 haproxy -f $W/haproxy.cfg -db
measure gloo 18090 "$gloo" run --config "$root/benches/proxy/one-route" --workers 1 --admin 127.0.0.1:19090
if [ -n "${GLOO_BASE:-}" ]; then
  mkdir -p $W/base-config && sed 's/18090/18091/' "$root/benches/proxy/one-route/gateway.yaml" > $W/base-config/gateway.yaml
  measure gloo-base 18091 "$GLOO_BASE" run --config $W/base-config --workers 1 --admin 127.0.0.1:19091
fi
if [ -n "${FLOOR:-}" ]; then
  (cd "$root" && cargo build --release -q -p gloo-benches --bin proxy_floor)
  measure floor 18095 "$root/target/release/proxy_floor" 127.0.0.1:18095 127.0.0.1:18081
fi
