"""A gRPC test backend: answers the unary method /gloo.test.Echo/Call with its own name.

Usage: backend.py NAME PORT [CERT KEY]. Prints "ready" once serving; runs until killed. With
CERT and KEY (PEM files) it serves over TLS.
No generated code: a generic handler with raw-bytes (de)serialisers.
"""
import sys
from concurrent import futures

import grpc


def main():
    name, port = sys.argv[1], int(sys.argv[2])

    def call(request, context):
        return name.encode()

    handler = grpc.method_handlers_generic_handler(
        "gloo.test.Echo",
        {"Call": grpc.unary_unary_rpc_method_handler(call, lambda b: b, lambda b: b)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    if len(sys.argv) > 4:
        with open(sys.argv[3], "rb") as cert, open(sys.argv[4], "rb") as key:
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
        server.add_secure_port(f"127.0.0.1:{port}", credentials)
    else:
        server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
