# Sourced by cpu_split.sh and instructions.sh: writes into directory $1 the peers of
# /work/shared/bench/peers.sh as it configures them, so each script measures the same setup:
#   body          the backend's 1 KiB response
#   backend.conf  the backend: nginx, one worker, on 127.0.0.1:18081
#   nginx.conf    nginx as the proxy: one worker, on 127.0.0.1:18082, upstream keep-alive
#   haproxy.cfg   HAProxy as the proxy: one thread, on 127.0.0.1:18083, connections reused
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
}
