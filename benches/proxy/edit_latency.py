#!/usr/bin/env python3
"""How long a config file edit takes to be live in `gloo run` (BENCHMARKS.md: <= 100 ms).

    edit_latency.py GLOO_BINARY [ROUNDS=20]

Two backends answer `a` and `b`. `gloo run` serves a route to upstream `a`; each round rewrites
the VirtualService file in place (as an editor saving it) to send the route to the other
upstream, and a client on a keep-alive connection polls the route every ~1 ms until the other
backend answers. The time from the start of the write to that answer is the edit's latency."""
import http.client, http.server, os, shutil, socket, statistics, subprocess, sys, tempfile, threading, time

gloo, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backend(name):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stalls

        def do_GET(self):
            self.send_response(200)
            self.send_header("content-length", str(len(name)))
            self.end_headers()
            self.wfile.write(name.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


port, admin = free_port(), free_port()
backends = {"a": backend("a"), "b": backend("b")}
work = tempfile.mkdtemp(prefix="gloo-edit-")
config = os.path.join(work, "config")  # only config in the watched directory, not the log
os.mkdir(config)
with open(os.path.join(config, "gateway.yaml"), "w") as f:
    f.write(f"""apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: edit, namespace: gloo-system}}
spec: {{bindAddress: 127.0.0.1, bindPort: {port}, httpGateway: {{}}}}
""")
    for name, p in backends.items():
        f.write(f"""---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: {name}, namespace: gloo-system}}
spec: {{static: {{hosts: [{{addr: 127.0.0.1, port: {p}}}]}}}}
""")
vs_path = os.path.join(config, "route.yaml")


def write_route(target):
    with open(vs_path, "w") as f:
        f.write(f"""apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: edit, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: {target}, namespace: gloo-system}}}}}}
""")


write_route("a")
log = open(os.path.join(work, "gloo.log"), "w")
proc = subprocess.Popen([gloo, "run", "--config", config, "--workers", "1",
                         "--admin", f"127.0.0.1:{admin}"], stdout=log, stderr=log)
conn = None


def get():
    global conn
    try:
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/")
        r = conn.getresponse()
        return r.read().decode()
    except (OSError, http.client.HTTPException):
        conn = None
        return None


try:
    deadline = time.monotonic() + 30
    while get() != "a":
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit("gloo run did not start serving; log: " + open(log.name).read())
        time.sleep(0.05)
    samples, target = [], "a"
    for _ in range(rounds):
        target = "b" if target == "a" else "a"
        start = time.monotonic()
        write_route(target)
        while get() != target:
            if time.monotonic() - start > 10:
                sys.exit(f"the edit to {target} was not live after 10 s; log: " + open(log.name).read())
            time.sleep(0.001)
        samples.append((time.monotonic() - start) * 1000)
        time.sleep(0.2)
    samples.sort()
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print(f"config edit -> live in gloo run, {rounds} edits, client polling every ~1 ms:")
    print(f"  p50 {p(0.5):.1f} ms  p99 {p(0.99):.1f} ms  min {samples[0]:.1f} ms  "
          f"max {samples[-1]:.1f} ms  mean {statistics.mean(samples):.1f} ms  (target p99 <= 100 ms)")
finally:
    proc.terminate()
    proc.wait()
    shutil.rmtree(work, ignore_errors=True)
