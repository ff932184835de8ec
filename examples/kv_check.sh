#!/usr/bin/env bash
# kv_check.sh KV_SERVER [kv_server args...]: kv_server on a free port of
# 127.0.0.1 next to a redis-server (persistence off, same 1 MB bulk limit)
# started here and stopped after, checked with clients nobody here wrote:
#   a redis-cli session (every command, its errors) answered exactly as
#     redis-server answers it, and a few replies checked literally;
#   redis-benchmark -t set,get,incr,mset -P 16 finishing without errors;
#   kv_check.py: 100,000 random commands compared byte for byte with
#     redis-server, malformed requests, half requests, big and oversized
#     values, 1,000 idle clients;
#   --idle, --max-clients, and SIGTERM (exit status 0, clients see the end).
set -euo pipefail
kv=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait; rm -rf "$dir"' EXIT
ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# port_of FILE: waits for "listening on ADDR" in FILE and prints the port.
port_of() {
  for _ in $(seq 100); do
    grep -q "listening on" "$1" && break
    sleep 0.05
  done
  sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' "$1" | head -n 1
}

# start_kv NAME ARGS...: sets kv_pid and kv_port.
start_kv() {
  local name=$1
  shift
  "$kv" 127.0.0.1:0 "$@" >"$dir/$name.out" 2>"$dir/$name.err" &
  kv_pid=$!
  pids+=("$kv_pid")
  kv_port=$(port_of "$dir/$name.out")
  [[ -n "$kv_port" ]] || { echo "kv_check: kv_server did not start"; cat "$dir/$name.out" "$dir/$name.err"; exit 1; }
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

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --proto-max-bulk-len 1mb \
  --daemonize no --logfile "$dir/redis.log" &
pids+=($!)
for _ in $(seq 100); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.05
done
start_kv main --max-bulk 1048576 "$@"

# 1. A redis-cli session: the same answers as redis-server's, byte for byte.
cat >"$dir/session" <<'EOF'
PING
PING hello
ECHO "two words"
SET k1 v1
GET k1
GET nosuch
SET k1 v2 NX
SET k1 v3 XX
SET k2 v NX
SET k2 w GET
SET k1 v EX 100 PX 100
SET k1 v EX 0
SET k1 v EX abc
SET k1 v BOGUS
SET k1
INCR n
INCRBY n 41
DECR n
DECRBY n 2
INCR k1
INCRBY n abc
SET big 9223372036854775807
INCR big
DECRBY n -9223372036854775808
MSET a 1 b 2 c 3
MSET a 1 b
MGET a b nosuch c
EXISTS a b nosuch a
DEL a b nosuch
EXPIRE c 1000
TTL c
PERSIST c
TTL c
TTL nosuch
EXPIRE c 10 NX XX
EXPIRE c 100
EXPIRE c 1000 LT
EXPIRE c 1000 GT
EXPIRE c 100 GT
EXPIRE c 10 LT
EXPIRE c 10 NX
EXPIRE c 10 XX
EXPIRE c abc
PEXPIRE c -1
EXISTS c
SETNX s 1
SETNX s 2
APPEND s 23
STRLEN s
DBSIZE
CONFIG GET save
CONFIG GET appendonly
CONFIG BOGUS
CLIENT SETNAME me
SELECT 0
NOSUCHCMD arg1 arg2
get
FLUSHALL
DBSIZE
EOF
redis-cli -p "$kv_port" <"$dir/session" >"$dir/kv.txt" 2>&1
redis-cli -p "$redis_port" <"$dir/session" >"$dir/redis.txt" 2>&1
diff "$dir/redis.txt" "$dir/kv.txt" || { echo "kv_check: redis-cli session differs (- redis-server, + kv_server)"; exit 1; }
grep -qx "ERR wrong number of arguments for 'set' command" "$dir/kv.txt"
grep -qx "ERR increment or decrement would overflow" "$dir/kv.txt"
[[ $(redis-cli -p "$kv_port" mget a nosuch | wc -l) == 2 ]]
echo "redis-cli session: $(wc -l <"$dir/session") commands, the same replies as redis-server"

# 2. redis-benchmark, pipelined: every request answered, no errors.
redis-benchmark -p "$kv_port" -t set,get,incr,mset -P 16 -n 20000 -c 20 -q >"$dir/bench.txt" 2>&1 ||
  { cat "$dir/bench.txt"; echo "kv_check: redis-benchmark failed"; exit 1; }
tr '\r' '\n' <"$dir/bench.txt" | grep -E "requests per second" | grep -vi error >"$dir/bench.ok" || true
if grep -qiE "error|warning" "$dir/bench.txt" || [[ $(wc -l <"$dir/bench.ok") != 4 ]]; then
  cat "$dir/bench.txt"
  echo "kv_check: redis-benchmark reported errors"
  exit 1
fi
echo "redis-benchmark: $(tr '\n' ' ' <"$dir/bench.ok")"

# 3. Random commands against both servers, malformed input, idle clients.
timeout 300 python3 "$here/kv_check.py" cross "$kv_port" "$redis_port" 100000 7
timeout 60 python3 "$here/kv_check.py" protocol "$kv_port" "$redis_port"
timeout 60 python3 "$here/kv_check.py" idle "$kv_port" 1000

# 4. Expiry: lazily on access and by the sweep (DBSIZE counts uncollected keys).
redis-cli -p "$kv_port" flushall >/dev/null
redis-cli -p "$kv_port" set gone v px 50 >/dev/null
redis-cli -p "$kv_port" set swept v px 50 >/dev/null
sleep 0.5
[[ -z $(redis-cli -p "$kv_port" get gone) ]] || { echo "kv_check: an expired key is still served"; exit 1; }
[[ $(redis-cli -p "$kv_port" dbsize) == 0 ]] || { echo "kv_check: the sweep left an expired key"; exit 1; }
echo "expiry: lazy and swept"

# 5. SIGTERM during a pipelined batch: every reply written out, an idle
# client sees the end of the stream, the exit status is 0.
exec 3<>"/dev/tcp/127.0.0.1/$kv_port"
timeout 60 python3 "$here/kv_check.py" stop "$kv_port" "$kv_pid"
timeout 10 cat <&3 >/dev/null || { echo "kv_check: a client was not closed at the stop"; exit 1; }
exec 3<&-
reap "$kv_pid"
[[ $rc == 0 ]] || { echo "kv_check: kv_server exited $rc after SIGTERM"; cat "$dir/main.err"; exit 1; }
echo "stop: exit 0"

# 6. --idle: a silent client is closed; --max-clients: one too many is refused.
start_kv limits --idle 0.3 --max-clients 2 "$@"
exec 3<>"/dev/tcp/127.0.0.1/$kv_port"
exec 4<>"/dev/tcp/127.0.0.1/$kv_port"
sleep 0.1
refused=$(timeout 10 redis-cli -p "$kv_port" ping 2>&1 || true)
[[ $refused == *"max number of clients reached"* ]] || { echo "kv_check: --max-clients: $refused"; exit 1; }
timeout 10 cat <&3 >/dev/null || { echo "kv_check: --idle did not close a silent client"; exit 1; }
exec 3<&- 4<&-
sleep 0.2
[[ $(redis-cli -p "$kv_port" ping) == PONG ]] || { echo "kv_check: no service after idle clients left"; exit 1; }
kill -TERM "$kv_pid"
reap "$kv_pid"
[[ $rc == 0 ]] || { echo "kv_check: kv_server exited $rc"; exit 1; }
echo "limits: --idle, --max-clients"
# A sanitizer build reports there (UBSan does not stop the process).
if grep -hE "runtime error:|Sanitizer" "$dir"/*.err; then
  echo "kv_check: sanitizer reports"
  exit 1
fi
echo "kv_check: OK"
