#!/bin/sh
# Makes the example's test material (checked in; run from this directory to make new ones):
# - certs/: a CA, the backend's server certificate (SANs backend.mesh and 127.0.0.1) and the
#   gateway's client certificate, for mTLS from the gateway to the backend;
# - jwt/: the JWKS (public key) in gloo/gloo.yaml's AuthConfig, and an
#   access token its private key signed (RS256) for user alice with scope `read`, expiring in 2100.
# Test material only, never for production.
set -eu
mkdir -p certs jwt
cd certs
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=mesh-ca -keyout ca.key -out ca.crt
issue() { # name, subject alt names, extended key usage
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr"
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$2" "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile "$1.ext" -out "$1.crt"
  rm "$1.csr" "$1.ext"
}
issue backend DNS:backend.mesh,IP:127.0.0.1 serverAuth
issue gateway DNS:gateway.mesh clientAuth
rm ca.key ca.srl
cd ../jwt
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out signing.key 2>/dev/null
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
modulus=$(openssl rsa -in signing.key -noout -modulus | cut -d= -f2 | xxd -r -p | b64url)
printf '{"keys":[{"kty":"RSA","kid":"mesh-1","use":"sig","alg":"RS256","n":"%s","e":"AQAB"}]}\n' "$modulus" > jwks.json
header=$(printf '{"alg":"RS256","typ":"JWT","kid":"mesh-1"}' | b64url)
claims=$(printf '{"iss":"https://issuer.mesh.example","sub":"alice","aud":"mesh-ingress","scope":"read","exp":4102444800}' | b64url)
signature=$(printf '%s.%s' "$header" "$claims" | openssl dgst -sha256 -sign signing.key -binary | b64url)
printf '%s.%s.%s\n' "$header" "$claims" "$signature" > token.jwt
# The signing key is not needed to run the example.
rm signing.key
