# Sourced by cpu_split.sh, instructions.sh and shapes.sh: the peers of
# /work/shared/bench/peers.sh as it configures them, so each script measures the same setup:
#   body          the backend's 1 KiB response
#   backend.conf  the backend: nginx, one worker, on 127.0.0.1:18081
#   nginx.conf    nginx as the proxy: one worker, on 127.0.0.1:18082, upstream keep-alive
#   haproxy.cfg   HAProxy as the proxy: one thread, on 127.0.0.1:18083, connections reused
#   envoy.yaml    Envoy as the proxy (run with --concurrency 1): on 127.0.0.1:18084, admin
#                 127.0.0.1:19902, no request ids, no dynamic stats

# The run's directory for a script measuring the peers: makes $W (named after $1, readable by
# nginx's workers) with the peers' configs in it, and on exit stops every process whose pid the
# script added to $pids and removes $W.
peer_workdir() {
  W=$(mktemp -d "/tmp/$1.XXXX"); chmod 755 "$W"
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$W"' EXIT
  write_peer_configs "$W"
}

# Writes the files above into directory $1.
write_peer_configs() {
  local W=$1
  head -c 1024 /dev/zero | tr '\0' 'x' > $W/body
  cat > $W/backend.conf <<C
daemon off; worker_processes 1; pid $W/b.pid; error_log $W/b.err;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:18081; location / { root $W; try_files /body =404; } } }
C
  cat > $W/nginx.conf <<C
daemon off; worker_processes 1; pid $W/n.pid; error_log $W/n.err;
events { worker_connections 4096; }
http { access_log off; upstream b { server 127.0.0.1:18081; keepalive 64; }
 server { listen 127.0.0.1:18082; location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
C
  cat > $W/haproxy.cfg <<C
global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend f
  bind 127.0.0.1:18083
  default_backend b
backend b
  http-reuse always
  server s1 127.0.0.1:18081
C
  cat > $W/envoy.yaml <<C
admin: {address: {socket_address: {address: 127.0.0.1, port_value: 19902}}}
static_resources:
  listeners:
  - address: {socket_address: {address: 127.0.0.1, port_value: 18084}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          generate_request_id: false
          route_config: {virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: b}}]}]}
          http_filters: [{name: envoy.filters.http.router, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router, dynamic_stats: false}}]
  clusters:
  - name: b
    connect_timeout: 1s
    type: STATIC
    circuit_breakers: {thresholds: [{max_connections: 100000, max_pending_requests: 100000, max_requests: 100000}]}
    load_assignment: {cluster_name: b, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 18081}}}}]}]}
C
}
