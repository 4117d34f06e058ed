"""A service inside the mesh: HTTPS that requires a client certificate signed by the mesh CA.

It answers every GET with JSON describing what arrived: the path, the request headers and the
client certificate's subject, so you can see what the gateway sent.

    python3 examples/mesh-ingress/backend.py 9443 examples/mesh-ingress/certs
"""

import http.server
import json
import ssl
import sys


class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        cert = self.connection.getpeercert() or {}
        subject = {k: v for rdn in cert.get("subject", ()) for (k, v) in rdn}
        body = json.dumps(
            {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "client_cert_cn": subject.get("commonName"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    port, certs = int(sys.argv[1]), sys.argv[2]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(f"{certs}/backend.crt", f"{certs}/backend.key")
    context.load_verify_locations(f"{certs}/ca.crt")
    context.verify_mode = ssl.CERT_REQUIRED
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Echo)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"backend listening on https://127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
