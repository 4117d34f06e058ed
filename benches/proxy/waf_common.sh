# Shared by waf_isolation.sh and waf_cpu.sh (sourced once `root` is set): checks the tools,
# makes the work directory `work` with a cleanup that kills every PID in `pids`, and defines
# the backend and the gateway both measure.
export PATH="$PATH:/usr/sbin:/sbin"
for tool in nginx wrk python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y nginx wrk)" >&2; exit 1; }
done
crs_setup=/etc/modsecurity/crs/crs-setup.conf
[ -f "$crs_setup" ] || { echo "missing $crs_setup (apt-get install -y modsecurity-crs)" >&2; exit 1; }

work=$(mktemp -d /tmp/gloo-waf-bench.XXXX); chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# waf_build: builds the workspace's `gloo` with --features waf and prints its path.
waf_build() {
  (cd "$root" && cargo build --release -q -p gloo-proxy --features waf --bin gloo)
  echo "${CARGO_TARGET_DIR:-$root/target}/release/gloo"
}

# waf_backend WORK PORT: nginx, one worker, a small HTML page for every path, on PORT.
waf_backend() {
  local work=$1 port=$2
  printf '<html><body><h1>Products</h1><p>page 2 of 7</p></body></html>\n' > "$work/page.html"
  cat > "$work/nginx.conf" <<C
daemon off; worker_processes 1; pid $work/nginx.pid; error_log $work/nginx.err;
events { worker_connections 4096; }
http { access_log off; default_type text/html;
  server { listen 127.0.0.1:$port; location / { root $work; try_files /page.html =404; } } }
C
  (exec nginx -c "$work/nginx.conf" -p "$work") & pids+=($!)
}

# waf_gateway_config DIR PORT BACKEND_PORT CRS_SETUP: a Gateway on PORT with /waf/ behind the
# OWASP CRS (as Gloo's coreRuleSet loads it) and /plain/ without a WAF, both to the backend.
waf_gateway_config() {
  local dir=$1 port=$2 backend=$3 crs_setup=$4
  mkdir -p "$dir"
  cat > "$dir/gateway.yaml" <<C
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {name: bench, namespace: gloo-system}
spec:
  bindAddress: 127.0.0.1
  bindPort: $port
  httpGateway: {}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: backend, namespace: gloo-system}
spec:
  static:
    hosts:
    - {addr: 127.0.0.1, port: $backend}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: shop, namespace: gloo-system}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{prefix: /waf/}]
      options:
        waf:
          coreRuleSet:
            customSettingsString: |
              SecRuleEngine On
              SecRequestBodyAccess On
              Include $crs_setup
      routeAction: {single: {upstream: {name: backend, namespace: gloo-system}}}
    - matchers: [{prefix: /plain/}]
      routeAction: {single: {upstream: {name: backend, namespace: gloo-system}}}
C
}

# waf_wait_ready PORT: waits until both routes of the gateway on PORT answer 200 (exits,
# with gloo's log, when they do not within a minute).
waf_wait_ready() {
  local route
  for route in plain waf; do
    for _ in $(seq 1 300); do
      curl -sf -o /dev/null "http://127.0.0.1:$1/$route/ready" && continue 2
      sleep 0.2
    done
    echo "the gateway on port $1 does not serve /$route/:" >&2
    cat "$work"/gloo*.log >&2
    exit 1
  done
}

# The benign browser GET the benches send with wrk (`wrk -s "$work/waf.lua"`).
cat > "$work/waf.lua" <<'LUA'
wrk.headers["Host"] = "shop.example.com"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
wrk.headers["Accept"] = "text/html,application/xhtml+xml"
wrk.headers["Accept-Language"] = "en-US,en;q=0.5"
wrk.headers["Cookie"] = "session=3f2a9c; theme=dark"
LUA
