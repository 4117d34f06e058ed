#!/usr/bin/env python3
"""Writes the 1,000-route / 100-upstream config of the data-plane comparison to DIR (listening
on PORT, default 18090, like one-route/), with 999 routes (prefix, exact, regex and header matchers mixed) ahead of
the catch-all that the benchmark's requests take, spread over 100 upstreams (all the backend)."""
import os, sys

out = sys.argv[1]
port = sys.argv[2] if len(sys.argv) > 2 else "18090"
os.makedirs(out, exist_ok=True)
gateway = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "one-route", "gateway.yaml")).read().split("---")[0]
docs = [gateway.replace("bindPort: 18090", f"bindPort: {port}")]
for u in range(100):
    docs.append(f"""apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  name: backend-{u}
  namespace: gloo-system
spec:
  static:
    hosts:
    - addr: 127.0.0.1
      port: 18081
""")
routes = []
for i in range(999):
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
            name: backend-{i % 100}
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
