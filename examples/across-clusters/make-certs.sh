#!/bin/sh
# Makes the example's test certificates (checked in under certs/; run from this directory to
# make new ones): one CA, and a certificate it signed for each cluster's gateway, used both as
# that gateway's server certificate (on its mTLS port) and as its client certificate when it
# fails over to the other cluster. Valid for ten years; test material only, never for production.
set -eu
mkdir -p certs
cd certs
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=example-ca \
  -keyout ca.key -out ca.crt
for name in cluster-a cluster-b; do
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$name.key" -out "$name.csr"
  printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' "$name" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile "$name.ext" -out "$name.crt"
  rm "$name.csr" "$name.ext"
done
# The CA's key is not needed to run the example.
rm ca.key ca.srl
