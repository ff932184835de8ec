#!/usr/bin/env bash
# echo_tls_check.sh SERVER CLIENT [server args...]: echo_server --tls with a
# test CA (make_test_certs.sh) on a free port of 127.0.0.1, then:
#   echo_client --tls CA for one second, by name (errors 0 or fail);
#   openssl s_client sends lines and must read them back, verifying the
#   certificate and the host name;
#   echo_client trusting another CA must fail every handshake, and the server
#   must still serve afterwards;
#   with --cores, SIGTERM ends the server with exit status 0.
set -euo pipefail
server=$1 client=$2
shift 2
dir=$(mktemp -d)
pid=
trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
here=$(dirname "$0")
"$here/make_test_certs.sh" "$dir"
mkdir "$dir/other"
"$here/make_test_certs.sh" "$dir/other"

"$server" 127.0.0.1:0 --tls "$dir/cert.pem" "$dir/key.pem" "$@" >"$dir/out" &
pid=$!
for _ in $(seq 100); do
  grep -q "listening on" "$dir/out" && break
  sleep 0.05
done
port=$(sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' "$dir/out" | head -n 1)
[[ -n "$port" ]] || { echo "echo_tls_check: the server did not start"; cat "$dir/out"; exit 1; }

"$client" "localhost:$port" --tls "$dir/ca.pem" --conns 32 --msg 100 --seconds 1

# s_client's stdin stays open until the three lines are back (or 20 s), then
# its end makes s_client close.
: >"$dir/sc"
{
  printf 'one\ntwo\nthree\n'
  for _ in $(seq 200); do
    (($(wc -l <"$dir/sc") >= 3)) && break
    sleep 0.1
  done
} | timeout 30 openssl s_client -quiet -no_ign_eof -verify_return_error -CAfile "$dir/ca.pem" \
  -verify_hostname localhost -connect "127.0.0.1:$port" >"$dir/sc" 2>/dev/null || true
lines=$(head -n 3 "$dir/sc" | tr '\n' ' ')
echo "echo_tls_check: s_client read back: $lines"
[[ $lines == "one two three " ]] || { echo "echo_tls_check: s_client did not get its lines back"; exit 1; }

if "$client" "localhost:$port" --tls "$dir/other/ca.pem" --conns 2 --seconds 1 >"$dir/refused" 2>&1; then
  echo "echo_tls_check: a client that does not trust the server's CA succeeded"
  exit 1
fi
echo "echo_tls_check: another CA: $(grep -m1 handshake "$dir/refused")"
"$client" "127.0.0.1:$port" --tls "$dir/ca.pem" --conns 4 --msg 3000 --seconds 1

if [[ " $* " == *" --cores "* ]]; then
  kill -TERM "$pid"
  rc=0
  wait "$pid" || rc=$?
  pid=
  [[ $rc == 0 ]] || { echo "echo_tls_check: exit status $rc after SIGTERM"; exit 1; }
fi
echo "echo_tls_check: OK"
