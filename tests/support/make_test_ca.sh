#!/usr/bin/env bash
# Makes a throwaway certificate authority and certificates signed by it, for TLS tests.
#
#   tests/support/make_test_ca.sh DIR
#
# Writes into DIR (created when missing), all PEM, keys unencrypted:
#   ca.pem, ca.key                 the CA (self-signed, 1 day)
#   server.pem, server.key         server certificate for 127.0.0.1, ::1 and localhost (SAN),
#                                  serial 1001, serverAuth
#   server2.pem, server2.key       a second server certificate for the same names, serial 1002
#                                  (the reload test swaps it in)
#   client.pem, client.key         client certificate (CN=ordertrace-test-client), serial 2001,
#                                  clientAuth
#   other-ca.pem, other-client.pem, other-client.key
#                                  a client certificate from an unrelated CA, which a server
#                                  trusting ca.pem must refuse
# Needs the openssl command line (Debian: openssl). EC P-256 keys: fast to make.
set -euo pipefail

dir=${1:?usage: make_test_ca.sh DIR}
mkdir -p "$dir"
cd "$dir"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2> /dev/null; }

# ca NAME: a self-signed CA certificate NAME.pem with key NAME.key.
ca() {
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 1 -subj "/CN=ordertrace test $1" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2> /dev/null
}

# leaf NAME CA SERIAL CN USAGE [SAN]: NAME.pem and NAME.key signed by CA.pem/CA.key.
leaf() {
  local name=$1 ca=$2 serial=$3 cn=$4 usage=$5 san=${6:-}
  key "$name.key"
  openssl req -new -key "$name.key" -out "$name.csr" -subj "/CN=$cn" 2> /dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [[ -n $san ]] && echo "subjectAltName=$san"
  } > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -set_serial "$serial" \
    -days 1 -out "$name.pem" -extfile "$name.ext" 2> /dev/null
  rm -f "$name.csr" "$name.ext"
}

san="IP:127.0.0.1,IP:::1,DNS:localhost"
ca ca
leaf server ca 1001 localhost serverAuth "$san"
leaf server2 ca 1002 localhost serverAuth "$san"
leaf client ca 2001 ordertrace-test-client clientAuth
ca other-ca
leaf other-client other-ca 3001 ordertrace-other-client clientAuth
rm -f other-ca.key
