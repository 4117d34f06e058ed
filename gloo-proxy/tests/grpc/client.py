"""A gRPC client: dials xds:///TARGET (resolved through the xDS server named in
GRPC_XDS_BOOTSTRAP), or HOST:PORT directly (plaintext HTTP/2, e.g. through gloo-proxy), makes N
unary calls and prints a JSON object counting answers by backend.

Usage: client.py TARGET N
"""
import json
import sys
import time

import grpc


def main():
    target, count = sys.argv[1], int(sys.argv[2])
    channel = grpc.insecure_channel(target if ":" in target else f"xds:///{target}")
    call = channel.unary_unary("/gloo.test.Echo/Call", lambda b: b, lambda b: b)
    deadline = time.time() + 30
    counts = {}
    done = 0
    while done < count:
        try:
            answer = call(b"ping", timeout=5, wait_for_ready=True).decode()
        except grpc.RpcError as err:
            if time.time() > deadline:
                print(json.dumps({"error": str(err)}), flush=True)
                sys.exit(1)
            time.sleep(0.1)
            continue
        counts[answer] = counts.get(answer, 0) + 1
        done += 1
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
