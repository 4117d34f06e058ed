#!/usr/bin/env bash
# Where each proxy's CPU per request goes: user space against the kernel (utime and stime of
# its processes over a wrk run), for nginx, HAProxy and `gloo run` on the one-route config, in
# the setup of /work/shared/bench/peers.sh (backend nginx and wrk on CPU 0, each proxy on CPU 1
# with one worker, 1 KiB responses). Rounds alternate the proxies, so a drifting machine
# shows as spread between rounds rather than as a difference between proxies.
#
#   benches/proxy/cpu_split.sh [seconds=10] [connections=32] [rounds=2]
#
# GLOO_BASE=/path/to/gloo adds a second gloo build (as gloo-base) to compare a change against.
# FLOOR=1 adds `proxy_floor` (benches/proxy/floor.rs, built here): a bare tokio proxy that
# only copies heads and bodies, the floor under any proxy on the same runtime.
#
# Why it exists: on loopback the kernel's share (the same four socket calls per request for
# every proxy) is most of each proxy's CPU, so a ratio of totals has a floor set by the
# kernel; this shows how far each proxy's user-space part is from the others'.
# Needs nginx, haproxy and wrk (apt) and a release build of gloo (compare.sh builds it).
set -u
export PATH="$PATH:/usr/sbin:/sbin"
root=$(cd "$(dirname "$0")/../.." && pwd)
gloo="$root/target/release/gloo"
DUR=${1:-10}; CONN=${2:-32}; ROUNDS=${3:-2}
. "$root/benches/proxy/peer_configs.sh"
peer_workdir split
taskset -c 0 nginx -c $W/backend.conf -p $W & pids+=($!)
taskset -c 1 nginx -c $W/nginx.conf -p $W & pids+=($!)
taskset -c 1 haproxy -f $W/haproxy.cfg -db >/dev/null 2>&1 & pids+=($!)
taskset -c 1 "$gloo" run --config "$root/benches/proxy/one-route" --workers 1 --admin 127.0.0.1:19090 >$W/gloo.log 2>&1 & pids+=($!)
proxies="nginx:18082 haproxy:18083 gloo:18090"
if [ -n "${GLOO_BASE:-}" ]; then
  # A second gloo build (say, main's before a change) on the same config and port 18091.
  mkdir -p $W/base-config && sed 's/18090/18091/' "$root/benches/proxy/one-route/gateway.yaml" > $W/base-config/gateway.yaml
  taskset -c 1 "$GLOO_BASE" run --config $W/base-config --workers 1 --admin 127.0.0.1:19091 >$W/gloo-base.log 2>&1 & pids+=($!)
  proxies="$proxies gloo-base:18091"
fi
if [ -n "${FLOOR:-}" ]; then
  (cd "$root" && cargo build --release -q -p gloo-benches --bin proxy_floor)
  taskset -c 1 "$root/target/release/proxy_floor" 127.0.0.1:18095 127.0.0.1:18081 & pids+=($!)
  proxies="$proxies floor:18095"
fi
sleep 3
# user and system clock ticks of the processes listening on port $1
ticks() { local u=0 s=0; for p in $(ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
  read a b < <(awk '{print $14, $15}' /proc/$p/stat); u=$((u+a)); s=$((s+b)); done; echo $u $s; }
run() { # name port
  curl -sf -o /dev/null http://127.0.0.1:$2/ || { echo "$1: no answer"; return; }
  read u0 s0 < <(ticks $2)
  out=$(taskset -c 0 wrk -t1 -c$CONN -d${DUR}s --latency http://127.0.0.1:$2/ 2>&1)
  read u1 s1 < <(ticks $2); reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  hz=$(getconf CLK_TCK)
  awk -v n=$1 -v du=$((u1-u0)) -v ds=$((s1-s0)) -v r=$reqs -v hz=$hz -v p99="$(echo "$out" | awk '$1=="99%" {print $2}')" 'BEGIN{printf "%-8s user %5.2f  kernel %5.2f  total %5.2f µs/request  %6.0f req/s  p99 %s\n", n, du*1e6/hz/r, ds*1e6/hz/r, (du+ds)*1e6/hz/r, r/'$DUR', p99}'
}
for r in $(seq $ROUNDS); do for p in $proxies; do run "${p%%:*}" "${p##*:}"; done; done
