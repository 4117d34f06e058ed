#!/usr/bin/env bash
# Memory with many routes: the resident set (VmRSS) of gloo and of Envoy 1.40 serving the same
# translated config, 10,000 routes over 1,000 upstreams by default (BENCHMARKS.md: gloo <= 0.5 x
# Envoy). Each process is measured three seconds after it answers requests on a few routes (the
# first, late ones, a header match: curl), then its admin /config_dump must show every route and
# cluster in force.
#
#   benches/proxy/rss.sh            # ROUTES=10000 UPSTREAMS=1000 by default
#
# Measured, one at a time, on the same listener port:
#   gloo run      control plane + proxy in one process (the shipped default)
#   envoy         --concurrency 1, fed over delta ADS by `gloo control-plane` (examples/envoy/bootstrap-delta.yaml)
#   gloo proxy    --workers 1, fed over delta ADS by that same `gloo control-plane` (data plane only)
# Envoy: $ENVOY, else the project's .tools/venv (scripts/test.sh installs it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
routes=${ROUTES:-10000}; upstreams=${UPSTREAMS:-1000}
port=${PORT:-18190}; backend=$((port + 1)); xds=$((port + 2)); gloo_admin=$((port + 3)); envoy_admin=$((port + 4))
if [ -z "${ENVOY:-}" ]; then
  ENVOY=$(ls "$root"/.tools/venv/lib/python3*/site-packages/envoy/_bin/envoy 2>/dev/null | head -1 || true)
fi
[ -x "${ENVOY:-}" ] || { echo "no Envoy: set ENVOY or run ./scripts/test.sh once (it installs Envoy 1.40 into .tools/venv)" >&2; exit 1; }
for p in $port $backend $xds $gloo_admin $envoy_admin; do
  if ss -ltnH "sport = :$p" | grep -q .; then echo "port $p is in use (set PORT=...)" >&2; exit 1; fi
done

(cd "$root" && cargo build --release -p gloo-proxy --bin gloo)
gloo="$root/target/release/gloo"
work=$(mktemp -d /tmp/gloo-rss.XXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

python3 "$here/gen_many_routes.py" "$work/config" "$port" "$routes" "$upstreams" "$backend"
# A backend that answers 200 to everything.
python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_GET(self):
        self.send_response(200); self.send_header("content-length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$backend" &
pids+=($!)

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# Paths taken by routes near the end of the list (and the catch-all), with their headers.
last_exact=$(( routes - 2 )); while [ $(( last_exact % 4 )) -ne 1 ]; do last_exact=$((last_exact - 1)); done
last_header=$(( routes - 2 )); while [ $(( last_header % 4 )) -ne 3 ]; do last_header=$((last_header - 1)); done
answers() { # requests on the first, a late and a header-matched route all get 200
  for path in / "/exact/$last_exact" /api/v0/items/1 /users/2/42; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$path")" = 200 ] || return 1
  done
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "x-tenant: t$last_header" "http://127.0.0.1:$port/h/$last_header/x")" = 200 ]
}
in_force() { # admin_url config_dump_path: "<routes> <clusters>" named in the config dump
  curl -sf "$1$2" | grep -oE '_all-route-[0-9]+|backend-[0-9]+_gloo-system' | sort -u |
    awk '/route/ {r++} /backend/ {c++} END {print r+0, c+0}'
}
measure() { # name pid admin_url config_dump_path: prints its RSS in KiB once it answers
  local start=$SECONDS kib counts
  until answers; do
    kill -0 "$2" 2>/dev/null || { echo "$1 exited" >&2; return 1; }
    [ $((SECONDS - start)) -lt 120 ] || { echo "$1 did not answer in 120 s" >&2; return 1; }
    sleep 0.2
  done
  # Settled: the same wait for every process (gloo returns its startup peak to the OS within
  # 2 s; Envoy's tcmalloc does as it does).
  sleep 3
  kib=$(rss_kib "$2")
  # Checked after measuring: building a 10k-route config dump costs memory of its own.
  counts=$(in_force "$3" "$4")
  [ "$counts" = "$routes $upstreams" ] || { echo "$1 had \"$counts\" routes and clusters in force, not \"$routes $upstreams\"" >&2; return 1; }
  echo "$kib"
}
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }

# 1. gloo run: the control plane and the proxy in one process.
"$gloo" run --config "$work/config" --workers 1 --admin "127.0.0.1:$gloo_admin" 2>"$work/run.log" &
run_pid=$!; pids+=($run_pid)
run_kib=$(measure "gloo run" $run_pid "http://127.0.0.1:$gloo_admin" /config_dump) || { cat "$work/run.log" >&2; exit 1; }
kill $run_pid; wait $run_pid 2>/dev/null || true

# 2. gloo control-plane, serving Envoy and then a gloo proxy shard.
"$gloo" control-plane --config "$work/config" --xds-addr "127.0.0.1:$xds" 2>"$work/cp.log" &
cp_pid=$!; pids+=($cp_pid)
sed -e "s/port_value: 9977/port_value: $xds/" -e "s/port_value: 19001/port_value: $envoy_admin/" \
  "$root/examples/envoy/bootstrap-delta.yaml" >"$work/envoy.yaml"
"$ENVOY" -c "$work/envoy.yaml" --concurrency 1 --disable-hot-restart -l error 2>"$work/envoy.log" &
envoy_pid=$!; pids+=($envoy_pid)
envoy_kib=$(measure envoy $envoy_pid "http://127.0.0.1:$envoy_admin" "/config_dump?include_eds") || { cat "$work/envoy.log" >&2; exit 1; }
kill $envoy_pid; wait $envoy_pid 2>/dev/null || true

"$gloo" proxy --xds "http://127.0.0.1:$xds" --workers 1 --admin "127.0.0.1:$gloo_admin" 2>"$work/shard.log" &
shard_pid=$!; pids+=($shard_pid)
shard_kib=$(measure "gloo proxy" $shard_pid "http://127.0.0.1:$gloo_admin" /config_dump) || { cat "$work/shard.log" >&2; exit 1; }
cp_kib=$(rss_kib $cp_pid)

echo "RSS with $routes routes over $upstreams upstreams (one worker each), same translated config:"
echo "  gloo run (control plane + proxy):     $(mib "$run_kib")"
echo "  gloo proxy (data plane, delta ADS):   $(mib "$shard_kib")"
echo "  envoy 1.40 (data plane, delta ADS):   $(mib "$envoy_kib")"
echo "  gloo control-plane (feeding them):    $(mib "$cp_kib")"
awk -v r="$run_kib" -v s="$shard_kib" -v e="$envoy_kib" 'BEGIN {
  printf "  gloo run / envoy:   %.2f (target <= 0.5: %s)\n", r / e, (r / e <= 0.5 ? "meets" : "misses")
  printf "  gloo proxy / envoy: %.2f (target <= 0.5: %s)\n", s / e, (s / e <= 0.5 ? "meets" : "misses") }'
