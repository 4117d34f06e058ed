#!/usr/bin/env bash
# CPU per request of nginx, HAProxy, Envoy and `gloo run` across request shapes, in the setup of
# /work/shared/bench/peers.sh (backend nginx and wrk on CPU 0, each proxy on CPU 1 with one
# worker, the peers configured as peers.sh configures them), with gloo's ratio to each peer.
#
#   benches/proxy/shapes.sh [seconds=8] [rounds=3]
#
# The shapes:
#   1k       GET, 1 KiB answers, 32 connections (peers.sh's own shape)
#   64k      GET, 64 KiB answers, 32 connections
#   1m       GET, 1 MiB answers, 8 connections
#   c256     GET, 1 KiB answers, 256 connections
#   post4k   POST of a 4 KiB body, 2-byte answers, 32 connections
#   new      GET, 1 KiB answers, a new connection for every request (`Connection: close`)
#   h2       HTTP/2 with prior knowledge (h2load), 1 KiB answers, 32 connections, 1 stream each
#   h2x10    the same with 10 concurrent streams a connection
#   tls      HTTPS (TLS 1.3, a self-signed ECDSA P-256 certificate), 1 KiB answers, 32
#            kept-alive connections: the cost of encrypting and decrypting
#   tls-new  the same with a new TLS connection for every request (`Connection: close`): the
#            cost of handshakes (the client resumes sessions when the proxy lets it)
# (nginx and HAProxy serve the HTTP/2 shapes from a second instance each, on 127.0.0.1:18182
# and :18183, configured as their peers.sh selves plus `http2` / `proto h2` on the listener;
# every proxy serves the TLS shapes from a second instance, on 127.0.0.1:18282, :18283, :18284
# and :18290, configured as its plain self plus the certificate on the listener, and for nginx
# `ssl_protocols TLSv1.2 TLSv1.3`, the default of nginx 1.23 on: 1.22's default stops at
# TLS 1.2, where wrk resumes every session without a key exchange while the others do TLS 1.3.)
# SHAPES="64k 1m" picks some. Rounds alternate the proxies within each shape; the figures are
# each proxy's median over the rounds.
#
# Why it exists: on loopback with 1 KiB answers the kernel's share of a request (the same for
# every proxy) is most of each proxy's CPU; larger bodies and more connections show how each
# proxy moves bytes and holds connections, which is where proxies differ.
# Needs nginx, haproxy, wrk and h2load (apt; installed when missing), Envoy ($ENVOY, else the project's .tools/venv; skipped
# when absent) and a release build of gloo (compare.sh builds it).
set -u
export PATH="$PATH:/usr/sbin:/sbin"
root=$(cd "$(dirname "$0")/../.." && pwd)
gloo="$root/target/release/gloo"
DUR=${1:-8}; ROUNDS=${2:-3}
missing=()
for tool in nginx haproxy wrk h2load; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  packages=("${missing[@]/h2load/nghttp2-client}")
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${packages[@]}"
fi
if [ -z "${ENVOY:-}" ]; then
  ENVOY=$(ls "$root"/.tools/venv/lib/python3*/site-packages/envoy/_bin/envoy 2>/dev/null | head -1 || true)
fi
. "$root/benches/proxy/peer_configs.sh"
peer_workdir shapes
head -c 65536 /dev/zero | tr '\0' 'x' > $W/s64k
head -c 1048576 /dev/zero | tr '\0' 'x' > $W/s1m
# The backend also serves /s64k and /s1m, and answers a POST to /post with "ok".
sed -i "s|location / { root $W; try_files /body =404; }|location = /post { return 200 \"ok\"; } location / { root $W; try_files \$uri /body =404; }|" $W/backend.conf
grep -q 'location = /post' $W/backend.conf || { echo "shapes.sh: backend.conf not as expected"; exit 1; }
cat > $W/post4k.lua <<'L'
wrk.method = "POST"
wrk.body = string.rep("y", 4096)
wrk.headers["Content-Type"] = "application/octet-stream"
L
# HTTP/2 (prior knowledge) instances of nginx and HAProxy: the same configs on other ports.
sed -e 's|listen 127.0.0.1:18082;|listen 127.0.0.1:18182 http2;|' -e "s|$W/n.pid|$W/n2.pid|" \
  -e "s|$W/n.err|$W/n2.err|" -e 's|http { access_log off;|http { access_log off; keepalive_requests 100000000;|' \
  $W/nginx.conf > $W/nginx-h2.conf
sed 's|bind 127.0.0.1:18083|bind 127.0.0.1:18183 proto h2|' $W/haproxy.cfg > $W/haproxy-h2.cfg
grep -q '18182 http2' $W/nginx-h2.conf && grep -q '18183 proto h2' $W/haproxy-h2.cfg ||
  { echo "shapes.sh: nginx.conf or haproxy.cfg not as expected"; exit 1; }
# TLS instances: the same configs on other ports, with a certificate on the listener.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -keyout $W/tls.key -out $W/tls.crt 2>/dev/null
cat $W/tls.crt $W/tls.key > $W/tls.pem
sed -e "s|listen 127.0.0.1:18082;|listen 127.0.0.1:18282 ssl; ssl_protocols TLSv1.2 TLSv1.3; ssl_certificate $W/tls.crt; ssl_certificate_key $W/tls.key;|" \
  -e "s|$W/n.pid|$W/n3.pid|" -e "s|$W/n.err|$W/n3.err|" $W/nginx.conf > $W/nginx-tls.conf
sed "s|bind 127.0.0.1:18083|bind 127.0.0.1:18283 ssl crt $W/tls.pem|" $W/haproxy.cfg > $W/haproxy-tls.cfg
python3 - "$W" <<'PY'
import sys
w = sys.argv[1]
text = open(f"{w}/envoy.yaml").read()
tls = f"""    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            tls_certificates: [{{certificate_chain: {{filename: {w}/tls.crt}}, private_key: {{filename: {w}/tls.key}}}}]
      filters:
"""
text = text.replace("    - filters:\n", tls, 1).replace("18084", "18284").replace("19902", "19903")
open(f"{w}/envoy-tls.yaml", "w").write(text)
PY
mkdir -p $W/gloo-tls
sed -e 's|bindPort: 18090|bindPort: 18290\n  ssl: true|' \
  -e "s|^  virtualHost:|  sslConfig:\n    sslFiles:\n      tlsCert: $W/tls.crt\n      tlsKey: $W/tls.key\n  virtualHost:|" \
  "$root/benches/proxy/one-route/gateway.yaml" > $W/gloo-tls/gateway.yaml
grep -q 'listen 127.0.0.1:18282 ssl' $W/nginx-tls.conf && grep -q '18283 ssl crt' $W/haproxy-tls.cfg &&
  grep -q DownstreamTlsContext $W/envoy-tls.yaml && grep -q 'ssl: true' $W/gloo-tls/gateway.yaml &&
  grep -q 'tlsKey' $W/gloo-tls/gateway.yaml ||
  { echo "shapes.sh: a TLS config is not as expected"; exit 1; }
cat > $W/close.lua <<'L'
wrk.headers["Connection"] = "close"
L
taskset -c 0 nginx -c $W/backend.conf -p $W & pids+=($!)
taskset -c 1 nginx -c $W/nginx.conf -p $W & pids+=($!)
taskset -c 1 haproxy -f $W/haproxy.cfg -db >/dev/null 2>&1 & pids+=($!)
taskset -c 1 nginx -c $W/nginx-h2.conf -p $W & pids+=($!)
taskset -c 1 haproxy -f $W/haproxy-h2.cfg -db >/dev/null 2>&1 & pids+=($!)
taskset -c 1 nginx -c $W/nginx-tls.conf -p $W & pids+=($!)
taskset -c 1 haproxy -f $W/haproxy-tls.cfg -db >/dev/null 2>&1 & pids+=($!)
proxies="nginx:18082 haproxy:18083"
if [ -n "$ENVOY" ]; then
  taskset -c 1 "$ENVOY" -c $W/envoy.yaml --concurrency 1 --base-id 78 -l error >/dev/null 2>&1 & pids+=($!)
  taskset -c 1 "$ENVOY" -c $W/envoy-tls.yaml --concurrency 1 --base-id 79 -l error >/dev/null 2>&1 & pids+=($!)
  proxies="$proxies envoy:18084"
fi
taskset -c 1 "$gloo" run --config "$root/benches/proxy/one-route" --workers 1 --admin 127.0.0.1:19090 >$W/gloo.log 2>&1 & pids+=($!)
taskset -c 1 "$gloo" run --config $W/gloo-tls --workers 1 --admin 127.0.0.1:19091 >$W/gloo-tls.log 2>&1 & pids+=($!)
proxies="$proxies gloo:18090"
sleep 3
# utime + stime clock ticks of the processes listening on port $1
ticks() { local t=0; for p in $(ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
  t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
run() { # shape proxy port connections path [wrk script] [scheme]
  local args=(-t1 -c$4 --latency) url=${7:-http}://127.0.0.1:$3$5; [ -n "${6:-}" ] && args+=(-s "$6")
  curl -ksf -o /dev/null ${7:-http}://127.0.0.1:$3/ || { echo "$2: no answer on :$3" >&2; return; }
  taskset -c 0 wrk "${args[@]}" -d2s $url >/dev/null 2>&1
  local t0 t1 out reqs
  t0=$(ticks $3)
  out=$(taskset -c 0 wrk "${args[@]}" -d${DUR}s $url 2>&1)
  t1=$(ticks $3)
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  if echo "$out" | grep -q 'Non-2xx'; then echo "$2: non-2xx answers on $1" >&2; return; fi
  awk -v s=$1 -v n=$2 -v d=$((t1-t0)) -v r=${reqs:-0} -v hz=$(getconf CLK_TCK) \
    -v p99="$(echo "$out" | awk '$1=="99%" {print $2}')" \
    'BEGIN { if (r > 0) printf "%s %s cpu_us_per_req=%.1f rps=%.0f p99=%s\n", s, n, d*1e6/hz/r, r/'$DUR', p99 }'
}
run_h2() { # shape proxy port streams
  taskset -c 0 h2load -D 2 -c 32 -m $4 -t 1 http://127.0.0.1:$3/ >/dev/null 2>&1
  local t0 t1 out reqs
  t0=$(ticks $3)
  out=$(taskset -c 0 h2load -D $DUR -c 32 -m $4 -t 1 http://127.0.0.1:$3/ 2>&1)
  t1=$(ticks $3)
  reqs=$(echo "$out" | awk '/^requests:/ {print $8}')
  if ! echo "$out" | grep -q ' 0 failed, 0 errored'; then echo "$2: failed requests on $1" >&2; return; fi
  awk -v s=$1 -v n=$2 -v d=$((t1-t0)) -v r=${reqs:-0} -v hz=$(getconf CLK_TCK) \
    'BEGIN { if (r > 0) printf "%s %s cpu_us_per_req=%.1f rps=%.0f\n", s, n, d*1e6/hz/r, r/'$DUR' }'
}
out=$W/results.txt
for shape in ${SHAPES:-1k 64k 1m c256 post4k new h2 h2x10 tls tls-new}; do
  case $shape in
    tls|tls-new)
      script=; [ $shape = tls-new ] && script=$W/close.lua
      for round in $(seq $ROUNDS); do
        for p in $proxies; do
          port=${p##*:}; port=$((port + 200))
          run $shape ${p%%:*} $port 32 / "$script" https
        done
      done | tee -a $out
      continue ;;
    h2|h2x10)
      streams=1; [ $shape = h2x10 ] && streams=10
      for round in $(seq $ROUNDS); do
        for p in $proxies; do
          port=${p##*:}; case ${p%%:*} in nginx) port=18182 ;; haproxy) port=18183 ;; esac
          run_h2 $shape ${p%%:*} $port $streams
        done
      done | tee -a $out
      continue ;;
    1k) conns=32 path=/ script= ;;
    64k) conns=32 path=/s64k script= ;;
    1m) conns=8 path=/s1m script= ;;
    c256) conns=256 path=/ script= ;;
    post4k) conns=32 path=/post script=$W/post4k.lua ;;
    new) conns=32 path=/ script=$W/close.lua ;;
    *) echo "unknown shape $shape" >&2; continue ;;
  esac
  for round in $(seq $ROUNDS); do
    for p in $proxies; do run $shape ${p%%:*} ${p##*:} $conns $path $script; done
  done | tee -a $out
done
python3 - "$out" <<'PY'
import statistics, sys
cpu = {}
for line in open(sys.argv[1]):
    shape, proxy, field = line.split()[:3]
    cpu.setdefault(shape, {}).setdefault(proxy, []).append(float(field.split("=")[1]))
print("\nmedian CPU µs per request, and gloo's ratio to each peer:")
for shape, by in cpu.items():
    med = {p: statistics.median(v) for p, v in by.items()}
    row = "  ".join(f"{p} {m:6.1f}" for p, m in med.items())
    ratios = "  ".join(f"gloo/{p} {med['gloo'] / m:4.2f}"
                       for p, m in med.items() if p != "gloo" and "gloo" in med)
    print(f"  {shape:<7} {row}   {ratios}")
PY
