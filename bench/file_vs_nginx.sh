#!/usr/bin/env bash
# file_vs_nginx.sh FILE_SERVER [SECONDS] [ROUNDS] [-- FILE_SERVER_ARGS...]
#
# examples/file_server against nginx (Debian nginx-light) serving the same
# 1 KiB, 64 KiB and 1 MiB files to `wrk -t1 -c64 -d SECONDS` in the same run.
# Both servers run on CPU 0 (taskset -c 0), wrk on CPU 1; nginx has one
# process (master_process off, one worker), sendfile on, access_log off and
# its paths in a temp dir. Rounds alternate the order of the servers; the
# report gives the medians of requests/s and of server CPU per request
# (utime+stime from /proc/PID/stat over the run, summed over the server's
# processes; io_uring and io-wq threads count, being the server's threads)
# and the ratios file_server/nginx. Defaults: 5 s runs, 3 rounds.
set -euo pipefail
server=$1
secs=${2:-5}
rounds=${3:-3}
shift $(($# < 3 ? $# : 3))
[[ ${1:-} == -- ]] && shift
extra=("$@")
command -v nginx >/dev/null || { echo "file_vs_nginx: nginx not found (scripts/deps installs nginx-light)"; exit 1; }
command -v wrk >/dev/null || { echo "file_vs_nginx: wrk not found"; exit 1; }

dir=$(mktemp -d)
fs_pid=
ng_pid=
trap '[[ -n "$fs_pid" ]] && kill "$fs_pid" 2>/dev/null; [[ -n "$ng_pid" ]] && kill "$ng_pid" 2>/dev/null; rm -rf "$dir"' EXIT
mkdir -p "$dir/root" "$dir/tmp"
head -c 1024 /dev/urandom >"$dir/root/1k.bin"
head -c 65536 /dev/urandom >"$dir/root/64k.bin"
head -c 1048576 /dev/urandom >"$dir/root/1m.bin"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

ng_port=$(free_port)
cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 100000000;
  default_type application/octet-stream;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  server {
    listen 127.0.0.1:$ng_port;
    root $dir/root;
  }
}
EOF
taskset -c 0 nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" &
ng_pid=$!
taskset -c 0 "$server" 127.0.0.1:0 --root "$dir/root" "${extra[@]}" >"$dir/fs.out" 2>&1 &
fs_pid=$!
for _ in $(seq 100); do
  grep -q "listening on" "$dir/fs.out" 2>/dev/null && curl -s -o /dev/null "http://127.0.0.1:$ng_port/1k.bin" && break
  sleep 0.1
done
fs_port=$(sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' "$dir/fs.out" | head -n 1)
[[ -n "$fs_port" ]] || { echo "file_vs_nginx: file_server did not start"; cat "$dir/fs.out"; exit 1; }
for f in 1k 64k 1m; do
  cmp -s <(curl -s "http://127.0.0.1:$fs_port/$f.bin") "$dir/root/$f.bin" || { echo "file_server: $f.bin differs"; exit 1; }
  cmp -s <(curl -s "http://127.0.0.1:$ng_port/$f.bin") "$dir/root/$f.bin" || { echo "nginx: $f.bin differs"; exit 1; }
done

# CPU ticks (utime + stime) of a process and its children.
ticks() {
  local p sum=0
  for p in "$1" $(pgrep -P "$1" || true); do
    read -r -a f <"/proc/$p/stat" || continue
    # Fields 14 and 15, counted after the ")" that ends the command name.
    local rest=${f[*]}
    rest=${rest##*) }
    read -r -a g <<<"$rest"
    sum=$((sum + g[11] + g[12]))
  done
  echo "$sum"
}
hz=$(getconf CLK_TCK)

# run NAME PID PORT FILE: one wrk run; appends "rps us_per_request" to $dir/NAME.FILE.
run() {
  local name=$1 pid=$2 port=$3 file=$4 before after out reqs rps
  before=$(ticks "$pid")
  out=$(taskset -c 1 wrk -t1 -c64 -d"${secs}s" "http://127.0.0.1:$port/$file.bin" 2>&1)
  after=$(ticks "$pid")
  if grep -qE "Non-2xx|Socket errors" <<<"$out"; then
    echo "file_vs_nginx: $name $file: wrk reported errors:"
    echo "$out"
    exit 1
  fi
  reqs=$(sed -nE 's/^ *([0-9]+) requests in.*/\1/p' <<<"$out")
  rps=$(sed -nE 's/^Requests\/sec: *([0-9.]+).*/\1/p' <<<"$out")
  python3 -c "import sys; r, t, hz = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]); print(f'{float(sys.argv[4]):.0f} {t / hz / r * 1e6:.2f}')" \
    "$reqs" "$((after - before))" "$hz" "$rps" >>"$dir/$name.$file"
  printf '  %-11s %-4s %10.0f req/s %8s us CPU/request\n' "$name" "$file" "$rps" "$(tail -n 1 "$dir/$name.$file" | cut -d' ' -f2)"
}

echo "file_vs_nginx: wrk -t1 -c64 -d${secs}s, $rounds rounds, servers on CPU 0, wrk on CPU 1"
echo "  file_server: $server ${extra[*]:-} (port $fs_port); nginx $(nginx -v 2>&1 | sed 's/.*\///') (port $ng_port)"
for round in $(seq "$rounds"); do
  echo "round $round"
  for file in 1k 64k 1m; do
    if ((round % 2)); then
      run file_server "$fs_pid" "$fs_port" "$file"
      run nginx "$ng_pid" "$ng_port" "$file"
    else
      run nginx "$ng_pid" "$ng_port" "$file"
      run file_server "$fs_pid" "$fs_port" "$file"
    fi
  done
done

echo "medians over $rounds rounds:"
printf '  %-5s %14s %14s %10s %16s %16s %10s\n' file "file_server/s" "nginx/s" ratio "fs us CPU/req" "nginx us/req" "CPU ratio"
for file in 1k 64k 1m; do
  python3 - "$dir/file_server.$file" "$dir/nginx.$file" "$file" <<'EOF'
import statistics, sys
def med(path, i):
    return statistics.median(float(l.split()[i]) for l in open(path))
fs_rps, ng_rps = med(sys.argv[1], 0), med(sys.argv[2], 0)
fs_cpu, ng_cpu = med(sys.argv[1], 1), med(sys.argv[2], 1)
print(f"  {sys.argv[3]:<5} {fs_rps:14.0f} {ng_rps:14.0f} {fs_rps / ng_rps:9.2f}x {fs_cpu:16.2f} {ng_cpu:16.2f} {fs_cpu / ng_cpu:9.2f}x")
EOF
done
kill -TERM "$fs_pid"
rc=0
wait "$fs_pid" || rc=$?
fs_pid=
[[ $rc == 0 ]] || { echo "file_vs_nginx: file_server exited with $rc"; exit 1; }
