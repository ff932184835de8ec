#!/usr/bin/env bash
# serve_check.sh KIND SERVER [CLIENT] [server args...]: starts an example
# server on a free port of 127.0.0.1 and checks what it answers.
#   echo SERVER CLIENT [args]: echo_client drives echo_server for one second,
#         connecting to "localhost" by name
#         (ctest fails the run unless it reports errors 0);
#   http SERVER: two pipelined requests to http_hello on one connection, the
#         second asking to close; both answers must come back, then the close;
#         an oversized head gets 431; SIGTERM with a connection open exits 0;
#   udp SERVER: udp_echo --ping 200 against udp_echo; every datagram must
#         come back intact.
set -euo pipefail
kind=$1 server=$2
shift 2
client=
if [[ $kind == echo ]]; then
  client=$1
  shift
fi
out=$(mktemp)
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
"$server" 127.0.0.1:0 "$@" >"$out" &
pid=$!
for _ in $(seq 100); do
  grep -qE "listening on|serving on" "$out" && break
  sleep 0.05
done
port=$(sed -nE 's/.*(listening|serving) on [^ ]*:([0-9]+).*/\2/p' "$out" | head -n 1)
[[ -n "$port" ]] || { echo "serve_check: the server did not start"; cat "$out"; exit 1; }
case $kind in
  echo) "$client" "localhost:$port" --conns 32 --msg 100 --seconds 1 ;;  # by name: resolved
  udp) "$server" "127.0.0.1:$port" --ping 200 ;;
  http)
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' >&3
    # cat ends at the server's close; timeout fails the check if it never comes.
    reply=$(timeout 10 cat <&3) || { echo "serve_check: the server did not close the connection"; exit 1; }
    answers=$(grep -o "Hello, world!" <<<"$reply" | wc -l)
    echo "serve_check: $answers answers, then the close"
    [[ $answers == 2 ]] && grep -q "Connection: close" <<<"$reply"
    # A head over the limit: 431, then the close.
    exec 4<>"/dev/tcp/127.0.0.1/$port"
    { printf 'GET / HTTP/1.1\r\n'; for _ in $(seq 400); do printf 'X-Filler: %060d\r\n' 0; done; printf '\r\n'; } >&4 || true
    reply=$(timeout 10 cat <&4) || { echo "serve_check: no close after an oversized head"; exit 1; }
    grep -q "^HTTP/1.1 431" <<<"$reply" || { echo "serve_check: no 431 for an oversized head: $reply"; exit 1; }
    echo "serve_check: oversized head: 431, then the close"
    # SIGTERM with an idle keep-alive connection open: exit status 0.
    exec 5<>"/dev/tcp/127.0.0.1/$port"
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    [[ $rc == 0 ]] || { echo "serve_check: exit status $rc after SIGTERM"; exit 1; }
    echo "serve_check: SIGTERM: exit status 0"
    ;;
  *) echo "serve_check: unknown kind $kind"; exit 2 ;;
esac
