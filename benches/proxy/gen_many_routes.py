#!/usr/bin/env python3
"""Writes a many-route config to DIR/gateway.yaml, listening on 127.0.0.1:PORT like one-route/.

    gen_many_routes.py DIR [PORT] [ROUTES] [UPSTREAMS] [BACKEND_PORT]

Defaults: port 18090, 1,000 routes over 100 upstreams (the data-plane comparison's config).
ROUTES - 1 routes (prefix, exact, regex and header matchers mixed) come ahead of the catch-all
`/` that the benchmark's requests take; they spread over UPSTREAMS upstreams, all of them the
benchmark backend 127.0.0.1:BACKEND_PORT (default 18081). rss.sh uses 10,000 routes over 1,000
upstreams."""
import os, sys

out = sys.argv[1]
port = sys.argv[2] if len(sys.argv) > 2 else "18090"
n_routes = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
n_upstreams = int(sys.argv[4]) if len(sys.argv) > 4 else 100
backend_port = sys.argv[5] if len(sys.argv) > 5 else "18081"
os.makedirs(out, exist_ok=True)
gateway = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "one-route", "gateway.yaml")).read().split("---")[0]
docs = [gateway.replace("bindPort: 18090", f"bindPort: {port}")]
for u in range(n_upstreams):
    docs.append(f"""apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  name: backend-{u}
  namespace: gloo-system
spec:
  static:
    hosts:
    - addr: 127.0.0.1
      port: {backend_port}
""")
routes = []
for i in range(n_routes - 1):
    kind = i % 4
    if kind == 0:
        m = f"- prefix: /api/v{i}/items"
    elif kind == 1:
        m = f"- exact: /exact/{i}"
    elif kind == 2:
        m = f"- regex: /users/{i}/[0-9]+"
    else:
        m = f"- prefix: /h/{i}\n        headers:\n        - name: x-tenant\n          value: t{i}"
    routes.append(f"""    - matchers:
      {m}
      routeAction:
        single:
          upstream:
            name: backend-{i % n_upstreams}
            namespace: gloo-system""")
routes.append("""    - matchers:
      - prefix: /
      routeAction:
        single:
          upstream:
            name: backend-0
            namespace: gloo-system""")
docs.append("""apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata:
  name: all
  namespace: gloo-system
spec:
  virtualHost:
    domains: ['*']
    routes:
""" + "\n".join(routes) + "\n")
open(os.path.join(out, "gateway.yaml"), "w").write("---\n".join(docs))
