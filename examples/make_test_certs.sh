#!/usr/bin/env bash
# make_test_certs.sh DIR: a throwaway CA (DIR/ca.pem) and a certificate for
# localhost and 127.0.0.1 signed by it (DIR/cert.pem, DIR/key.pem), made with
# the openssl command-line tool for the examples' TLS checks. P-256 keys, one
# or two days of validity; nothing here is meant to outlive the check.
set -euo pipefail
dir=$1
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 2 -subj /CN=coil-check-ca 2>/dev/null
openssl req "${ec[@]}" -keyout "$dir/key.pem" -out "$dir/cert.csr" -subj /CN=localhost 2>/dev/null
echo "subjectAltName=DNS:localhost,IP:127.0.0.1" >"$dir/ext"
openssl x509 -req -in "$dir/cert.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
  -out "$dir/cert.pem" -days 1 -extfile "$dir/ext" 2>/dev/null
