#!/usr/bin/env bash
# echo_pair.sh SERVER CLIENT [server args...]: runs echo_server on a free
# port of 127.0.0.1 with the given arguments, drives it with echo_client for
# one second, and fails unless every round trip came back without errors.
set -euo pipefail
server=$1 client=$2
shift 2
out=$(mktemp)
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
"$server" 127.0.0.1:0 "$@" >"$out" &
pid=$!
for _ in $(seq 100); do
  grep -q "listening on" "$out" && break
  sleep 0.05
done
port=$(sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' "$out" | head -n 1)
[[ -n "$port" ]] || { echo "echo_pair: the server did not start"; cat "$out"; exit 1; }
"$client" "127.0.0.1:$port" --conns 32 --msg 100 --seconds 1
