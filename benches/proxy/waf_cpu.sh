#!/usr/bin/env bash
# Issue 5: what a WAF request costs `gloo run` end to end, in CPU. Each `gloo` binary given
# (built with --features waf) runs the gateway of waf_isolation.sh (/waf/ behind the OWASP CRS)
# on its own port; rounds alternate the binaries, each round a wrk run of benign GETs on /waf/,
# and report the gloo process's CPU per request (user and system time over the run, from
# /proc) with the requests a second. Alternating rounds let two builds be compared on a
# machine whose speed drifts: compare within a round.
#
#   benches/proxy/waf_cpu.sh [rounds=3] [seconds=8] [wrk connections=16] GLOO_BIN...
#
# With no binary it builds and measures the workspace's. Needs nginx and wrk (apt-get install
# -y nginx wrk), libmodsecurity and the CRS (apt-get install -y libmodsecurity-dev
# modsecurity-crs). Everything shares the machine's cores, as in waf_isolation.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rounds=${1:-3}; dur=${2:-8}; conns=${3:-16}
bins=("${@:4}")
source "$here/waf_common.sh"
[ ${#bins[@]} -gt 0 ] || bins=("$(waf_build)")

backend=$(free_port)
waf_backend "$work" "$backend"
ports=(); gloo_pids=()
for i in "${!bins[@]}"; do
  ports[i]=$(free_port)
  waf_gateway_config "$work/config$i" "${ports[i]}" "$backend" "$crs_setup"
  (exec "${bins[i]}" run --config "$work/config$i" --admin "127.0.0.1:$(free_port)" \
    >"$work/gloo$i.log" 2>&1) & pids+=($!); gloo_pids[i]=$!
done
for port in "${ports[@]}"; do waf_wait_ready "$port"; done

hz=$(getconf CLK_TCK)
cpu() { awk '{print $14, $15}' "/proc/$1/stat"; }
echo "round  build                            CPU µs/request (user + system)   requests/s"
for r in $(seq "$rounds"); do
  for i in "${!bins[@]}"; do
    read -r u0 s0 < <(cpu "${gloo_pids[i]}")
    out=$(wrk -t1 -c"$conns" -d"${dur}s" -s "$work/waf.lua" \
      "http://127.0.0.1:${ports[i]}/waf/products?page=2&sort=price" 2>&1)
    read -r u1 s1 < <(cpu "${gloo_pids[i]}")
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    failed=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    [ -z "$failed" ] || { echo "${bins[i]}: $failed answers were not 2xx" >&2; exit 1; }
    awk -v r="$r" -v b="${bins[i]}" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v n="$requests" \
      -v hz="$hz" -v d="$dur" 'BEGIN { printf "%-6s %-32s %7.1f (%6.1f + %5.1f)       %8.0f\n",
      r, b, (u + s) * 1e6 / hz / n, u * 1e6 / hz / n, s * 1e6 / hz / n, n / d }'
  done
done
