#!/usr/bin/env bash
# Issue 5: WAF evaluation never stalls other requests. `gloo run` (release, `--features waf`)
# serves two routes to one nginx backend: /waf/ behind the OWASP CRS (Debian's modsecurity-crs,
# as Gloo's coreRuleSet loads it) and /plain/ without a WAF. A low-rate probe (one request at a
# time on a keep-alive connection, `rate` a second) measures /plain/'s latency twice per round:
# alone, then while wrk saturates /waf/ with benign GETs. Each figure is the median over the
# rounds; the last lines give the p99 ratio (loaded / idle).
#
# SATURATE=plain swaps the roles: wrk saturates /plain/ and the probe measures /waf/. WAF
# evaluation runs at the lowest CPU priority, so this is its price: how long a WAF request
# waits while plain traffic keeps the cores busy.
#
#   benches/proxy/waf_isolation.sh [rounds=3] [seconds=10] [wrk connections=16] [rate=50]
#
# Needs nginx and wrk (apt-get install -y nginx wrk), libmodsecurity and the CRS
# (apt-get install -y libmodsecurity-dev modsecurity-crs). GLOO_BIN skips the build and runs
# that `gloo` (built with --features waf). GLOO_WORKERS sets `gloo run
# --workers` (default: gloo's own, one per core). Everything shares the machine's cores, so
# run it on an otherwise idle machine, or say it was not.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rounds=${1:-3}; dur=${2:-10}; conns=${3:-16}; rate=${4:-50}
case "${SATURATE:-waf}" in
  waf) loaded=waf; probed=plain ;;
  plain) loaded=plain; probed=waf ;;
  *) echo "SATURATE is waf or plain, not ${SATURATE}" >&2; exit 1 ;;
esac
source "$here/waf_common.sh"
gloo=${GLOO_BIN:-$(waf_build)}   # a `gloo` built with --features waf

backend=$(free_port); port=$(free_port); admin=$(free_port)

# The backend, and the gateway: /waf/ behind the CRS, /plain/ without a WAF.
waf_backend "$work" "$backend"
waf_gateway_config "$work/config" "$port" "$backend" "$crs_setup"
workers=()
[ -n "${GLOO_WORKERS:-}" ] && workers=(--workers "$GLOO_WORKERS")
(exec "$gloo" run --config "$work/config" --admin "127.0.0.1:$admin" "${workers[@]}" \
  >"$work/gloo.log" 2>&1) & pids+=($!)

# The probe: `rate` GETs a second, one at a time, on one keep-alive connection; prints
# "p50_us p99_us max_us count errors".
cat > "$work/probe.py" <<'PY'
import http.client, sys, time
port, path, seconds, rate = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
headers = {"Host": "shop.example.com", "User-Agent": "probe/1.0", "Accept": "text/html"}
lat, errors = [], 0
end = time.monotonic() + seconds
next_at = time.monotonic()
while time.monotonic() < end:
    now = time.monotonic()
    if now < next_at:
        time.sleep(next_at - now)
    next_at += 1.0 / rate
    t = time.perf_counter()
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse(); r.read()
        ok = r.status == 200
    except Exception:
        ok = False
        conn.close(); conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    d = (time.perf_counter() - t) * 1e6
    if ok:
        lat.append(d)
    else:
        errors += 1
lat.sort()
pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
print(f"{pick(0.5):.0f} {pick(0.99):.0f} {lat[-1] if lat else float('nan'):.0f} {len(lat)} {errors}")
PY

waf_wait_ready "$port"

results="$work/results.txt"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the first round"
echo "probing /$probed/, then saturating /$loaded/"
printf '%-6s %-9s %9s %9s %9s %7s %6s %12s %9s\n' round load p50_us p99_us max_us count errors loaded_req/s non2xx
for r in $(seq 1 "$rounds"); do
  read -r p50 p99 max n err < <(python3 "$work/probe.py" "$port" "/$probed/products" "$dur" "$rate")
  printf '%-6s %-9s %9s %9s %9s %7s %6s %12s %9s\n' "$r" idle "$p50" "$p99" "$max" "$n" "$err" - -
  echo "idle $p50 $p99 $max" >> "$results"
  wrk -t1 -c"$conns" -d"$((dur + 2))s" -s "$work/waf.lua" \
    "http://127.0.0.1:$port/$loaded/products?page=2&sort=price" > "$work/wrk.txt" 2>&1 &
  wrk_pid=$!
  sleep 1
  read -r p50 p99 max n err < <(python3 "$work/probe.py" "$port" "/$probed/products" "$dur" "$rate")
  wait "$wrk_pid"
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt"); non2xx=${non2xx:-0}
  printf '%-6s %-9s %9s %9s %9s %7s %6s %12s %9s\n' "$r" saturated "$p50" "$p99" "$max" "$n" "$err" "$rps" "$non2xx"
  echo "loaded $p50 $p99 $max $rps" >> "$results"
done

python3 - "$results" "$probed" "$loaded" <<'PY'
import statistics, sys
probed, loaded_route = sys.argv[2], sys.argv[3]
rows = [l.split() for l in open(sys.argv[1])]
med = lambda kind, i: statistics.median(float(r[i]) for r in rows if r[0] == kind)
idle, loaded = med("idle", 2), med("loaded", 2)
print(f"\nmedians over {len(rows) // 2} rounds, /{probed}/ while /{loaded_route}/ is:")
print(f"  idle:      p50 {med('idle', 1):8.0f} us   p99 {idle:8.0f} us")
print(f"  saturated: p50 {med('loaded', 1):8.0f} us   p99 {loaded:8.0f} us   (/{loaded_route}/ at {med('loaded', 4):.0f} req/s)")
print(f"  p99 saturated / idle: {loaded / idle:.2f}")
PY
