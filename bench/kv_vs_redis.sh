#!/usr/bin/env bash
# kv_server against redis-server with redis-benchmark, in the same run:
#   bench/kv_vs_redis.sh [KV_SERVER] [N] [ROUNDS]   (defaults: build/bin/kv_server 200000 3)
# Both servers run pinned to CPU 0 (CPU=...), the client to CPU 1
# (CLIENT_CPU=...); each round runs `redis-benchmark -t set,get -n N -c 50`
# at -P 1 and (with 5N requests) at -P 16 against each server, alternating
# which goes first. Reports the medians of requests/s and of server CPU per
# request (utime+stime from /proc/PID/stat, before and after, over the
# requests sent), and the ratios kv_server/redis-server. Builds nothing.
# KV_ARGS adds kv_server flags (KV_ARGS="--recv plain").
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
kv=${1:-}
if [[ -z $kv ]]; then
  for c in "$here/build/bin/kv_server" "$here/build/examples/kv_server"; do
    [[ -x $c ]] && kv=$c && break
  done
fi
[[ -x ${kv:-} ]] || { echo "kv_vs_redis.sh: kv_server not found (build it, or pass its path)" >&2; exit 2; }
n=${2:-200000}
rounds=${3:-3}
cpu=${CPU:-0}
client_cpu=${CLIENT_CPU:-1}
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null ||
  { echo "kv_vs_redis.sh: redis-server and redis-benchmark are needed (scripts/deps)" >&2; exit 2; }

dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait; rm -rf "$dir"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# shellcheck disable=SC2086 # KV_ARGS: extra kv_server flags, split on spaces
taskset -c "$cpu" "$kv" 127.0.0.1:0 ${KV_ARGS:-} >"$dir/kv.out" 2>&1 &
kv_pid=$!
pids+=("$kv_pid")
for _ in $(seq 100); do
  grep -q "listening on" "$dir/kv.out" && break
  sleep 0.05
done
kv_port=$(sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' "$dir/kv.out")
redis_port=$(free_port)
taskset -c "$cpu" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize no --logfile "$dir/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
for _ in $(seq 100); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.05
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME PID PORT PIPELINE REQUESTS: one redis-benchmark run, one result line.
run() {
  local name=$1 pid=$2 port=$3 p=$4 reqs=$5 before after
  before=$(ticks "$pid")
  taskset -c "$client_cpu" redis-benchmark -p "$port" -t set,get -n "$reqs" -c 50 -P "$p" --csv >"$dir/csv" 2>&1
  after=$(ticks "$pid")
  echo "$name $p $reqs $((after - before)) $(grep -E '^"(SET|GET)"' "$dir/csv" | cut -d, -f2 | tr -d '"' | tr '\n' ' ')"
}

for ((i = 1; i <= rounds; i++)); do
  echo "round $i/$rounds" >&2
  for p in 1 16; do
    reqs=$n
    [[ $p == 16 ]] && reqs=$((5 * n))
    if ((i % 2)); then
      run kv "$kv_pid" "$kv_port" "$p" "$reqs" >>"$dir/rows"
      run redis "$redis_pid" "$redis_port" "$p" "$reqs" >>"$dir/rows"
    else
      run redis "$redis_pid" "$redis_port" "$p" "$reqs" >>"$dir/rows"
      run kv "$kv_pid" "$kv_port" "$p" "$reqs" >>"$dir/rows"
    fi
  done
done

python3 - "$dir/rows" "$(getconf CLK_TCK)" <<'EOF'
import statistics, sys
hz = int(sys.argv[2])
rows = {}
for line in open(sys.argv[1]):
    name, p, reqs, ticks, set_rps, get_rps = line.split()
    # two tests (SET, GET) of reqs requests each
    cpu_us = int(ticks) / hz * 1e6 / (2 * int(reqs))
    rows.setdefault((name, int(p)), []).append((float(set_rps), float(get_rps), cpu_us))
med = lambda xs: statistics.median(xs)
print("redis-benchmark -t set,get -c 50; servers on one CPU; medians of %d rounds" % len(rows[("kv", 1)]))
print("%-6s %-13s %12s %12s %16s" % ("-P", "server", "SET req/s", "GET req/s", "CPU us/request"))
for p in (1, 16):
    for name in ("kv", "redis"):
        r = rows[(name, p)]
        print("%-6d %-13s %12.0f %12.0f %16.3f" % (p, "kv_server" if name == "kv" else "redis-server",
              med([x[0] for x in r]), med([x[1] for x in r]), med([x[2] for x in r])))
    kv, rd = rows[("kv", p)], rows[("redis", p)]
    print("-P %-3d kv/redis: CPU per request %.2fx, SET req/s %.2fx, GET req/s %.2fx" % (
        p, med([x[2] for x in kv]) / med([x[2] for x in rd]), med([x[0] for x in kv]) / med([x[0] for x in rd]),
        med([x[1] for x in kv]) / med([x[1] for x in rd])))
EOF
