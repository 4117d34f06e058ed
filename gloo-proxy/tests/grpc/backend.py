"""A gRPC test backend: answers the unary method /gloo.test.Echo/Call with its own name.

Usage: backend.py NAME PORT. Prints "ready" once serving; runs until killed.
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
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
