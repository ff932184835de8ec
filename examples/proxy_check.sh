#!/usr/bin/env bash
# proxy_check.sh PROXY ECHO_SERVER ECHO_CLIENT [proxy args...]: tcp_proxy in
# front of echo_server on free ports of 127.0.0.1, checked four ways:
#   echo_client through the proxy reports errors 0;
#   half-close: a client that ends its sending side still reads the echo of
#     what it sent, then the end of the stream;
#   --idle: a silent connection is closed by the proxy;
#   SIGTERM with a connection open: the connection still works during the
#     grace, the proxy exits 0; a second SIGTERM during a long grace ends the
#     process at once (killed by SIGTERM).
set -euo pipefail
proxy=$1 echo_server=$2 echo_client=$3
shift 3
dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"' EXIT

# port_of FILE: waits for "listening on ADDR" in FILE and prints the port.
port_of() {
  for _ in $(seq 100); do
    grep -q "listening on" "$1" && break
    sleep 0.05
  done
  sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' "$1" | head -n 1
}

# start_proxy NAME ARGS...: starts tcp_proxy; sets proxy_pid and proxy_port.
start_proxy() {
  local name=$1
  shift
  "$proxy" 127.0.0.1:0 "127.0.0.1:$echo_port" "$@" >"$dir/$name.out" 2>"$dir/$name.err" &
  proxy_pid=$!
  pids+=("$proxy_pid")
  proxy_port=$(port_of "$dir/$name.out")
  [[ -n "$proxy_port" ]] || { echo "proxy_check: the proxy did not start"; cat "$dir/$name.out" "$dir/$name.err"; exit 1; }
}

# reap PID: waits (at most 20 s) for PID and sets rc to its exit status.
reap() {
  for _ in $(seq 400); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.05
  done
  rc=0
  wait "$1" || rc=$?
}

"$echo_server" 127.0.0.1:0 >"$dir/echo.out" &
pids+=($!)
echo_port=$(port_of "$dir/echo.out")
[[ -n "$echo_port" ]] || { echo "proxy_check: echo_server did not start"; exit 1; }

# 1. Load through the proxy (ctest also matches "errors 0").
start_proxy load "$@"
"$echo_client" "127.0.0.1:$proxy_port" --conns 16 --msg 100 --seconds 1

# 2. Half-close: shut down our sending side, still read the reply to the end.
# bash cannot shut down one side of /dev/tcp; python3 can.
reply=$(timeout 10 python3 - "$proxy_port" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"half-closed hello")
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    got += b
print(got.decode())
EOF
) || { echo "proxy_check: half-close: no end of stream"; exit 1; }
[[ $reply == "half-closed hello" ]] || { echo "proxy_check: half-close: got '$reply'"; exit 1; }
echo "proxy_check: half-close: the echo came back, then the end of the stream"
kill -TERM "$proxy_pid"
reap "$proxy_pid"
[[ $rc == 0 ]] || { echo "proxy_check: exit status $rc after SIGTERM"; cat "$dir/load.err"; exit 1; }

# 3. Idle timeout: a connection that never sends is closed by the proxy.
start_proxy idle --idle 0.2 "$@"
exec 3<>"/dev/tcp/127.0.0.1/$proxy_port"
timeout 10 cat <&3 >/dev/null || { echo "proxy_check: the idle connection was not closed"; exit 1; }
exec 3<&-
echo "proxy_check: idle connection closed"
kill -TERM "$proxy_pid"
reap "$proxy_pid"
[[ $rc == 0 ]] || { echo "proxy_check: exit status $rc after SIGTERM (idle)"; exit 1; }

# 4. SIGTERM while a connection is open: it still relays during the grace;
# once the grace is over the proxy cancels it and exits 0.
start_proxy term --grace 0.5 "$@"
exec 3<>"/dev/tcp/127.0.0.1/$proxy_port"
printf 'before\n' >&3
read -r -t 10 line <&3
[[ $line == before ]] || { echo "proxy_check: no echo before the stop"; exit 1; }
kill -TERM "$proxy_pid"
printf 'during\n' >&3
read -r -t 10 line <&3
[[ $line == during ]] || { echo "proxy_check: no echo during the grace"; exit 1; }
reap "$proxy_pid"
exec 3<&-
[[ $rc == 0 ]] || { echo "proxy_check: exit status $rc after SIGTERM with a connection open"; cat "$dir/term.err"; exit 1; }
echo "proxy_check: SIGTERM with a connection open: exit status 0"

# 5. A second SIGTERM during a long grace ends the process at once.
start_proxy twice --grace 3600 "$@"
exec 3<>"/dev/tcp/127.0.0.1/$proxy_port"
printf 'x\n' >&3
read -r -t 10 line <&3
kill -TERM "$proxy_pid"
for _ in $(seq 100); do
  grep -q stopping "$dir/twice.err" && break
  sleep 0.05
done
kill -TERM "$proxy_pid"
reap "$proxy_pid"
exec 3<&-
[[ $rc == 143 ]] || { echo "proxy_check: exit status $rc after a second SIGTERM (want 143)"; exit 1; }
echo "proxy_check: a second SIGTERM ends the stop: status 143"
echo "proxy_check: OK"
