#!/usr/bin/env bash
# tls_check.sh HTTPS_HELLO: makes a CA and a certificate for localhost and
# 127.0.0.1 (make_test_certs.sh) in a temp dir, starts
# https_hello on a free port of 127.0.0.1, and asks it twice over one
# connection with curl (keep-alive), verifying the certificate against the CA;
# then two pipelined requests, the second with Connection: close, through
# openssl s_client; then a client that does not trust the CA must be refused.
set -euo pipefail
server=$1
dir=$(mktemp -d)
pid=
trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
"$(dirname "$0")/make_test_certs.sh" "$dir"

"$server" 127.0.0.1:0 --cert "$dir/cert.pem" --key "$dir/key.pem" >"$dir/out" &
pid=$!
for _ in $(seq 100); do
  grep -q "listening on" "$dir/out" && break
  sleep 0.05
done
port=$(sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' "$dir/out" | head -n 1)
[[ -n "$port" ]] || { echo "tls_check: the server did not start"; cat "$dir/out"; exit 1; }

# Two URLs on one curl command line share one connection (one handshake).
url="https://localhost:$port/"
body=$(timeout 20 curl -sS --cacert "$dir/ca.pem" --resolve "localhost:$port:127.0.0.1" -w '|%{num_connects}\n' \
  "$url" "${url}b")
echo "tls_check: curl got: $(tr '\n' ' ' <<<"$body")"
[[ $(grep -c "^Hello, world!|" <<<"$body") == 2 ]] || { echo "tls_check: expected two answers"; exit 1; }
# num_connects: 1 for the first transfer, 0 for the second (the connection was reused).
[[ $(sed -n 2p <<<"$body") == "Hello, world!|0" ]] || { echo "tls_check: the connection was not kept alive"; exit 1; }

# Two pipelined requests in one write, the second asking to close: both
# answers, then the server's close (s_client -ign_eof waits for it).
reply=$(printf 'GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' |
  timeout 20 openssl s_client -quiet -ign_eof -verify_return_error -CAfile "$dir/ca.pem" \
    -verify_hostname localhost -connect "127.0.0.1:$port" 2>/dev/null) ||
  { echo "tls_check: pipelined requests: the server did not close the connection"; exit 1; }
answers=$(grep -o "Hello, world!" <<<"$reply" | wc -l)
echo "tls_check: pipelined: $answers answers, then the close"
[[ $answers == 2 ]] && grep -q "Connection: close" <<<"$reply" || { echo "tls_check: expected two answers"; exit 1; }

# Without the CA, curl must refuse the certificate (and the server must survive).
if timeout 20 curl -sS --resolve "localhost:$port:127.0.0.1" "$url" >/dev/null 2>"$dir/err"; then
  echo "tls_check: an untrusted certificate was accepted"
  exit 1
fi
echo "tls_check: without the CA: $(head -n 1 "$dir/err")"
again=$(timeout 20 curl -sS --cacert "$dir/ca.pem" --resolve "localhost:$port:127.0.0.1" "$url")
[[ $again == "Hello, world!" ]] || { echo "tls_check: the server did not survive a refused handshake"; exit 1; }
echo "tls_check: OK"
