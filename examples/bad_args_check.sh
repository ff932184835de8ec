#!/usr/bin/env bash
# bad_args_check.sh BIN_DIR: every example, and coil-bench when built, refuses
# bad arguments before doing any work: a non-zero status (not a timeout) and
# a usage line or the reason on stderr.
set -uo pipefail
bin=$1
failures=0
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export TMPDIR=$dir  # where coil-bench would create its data file, were a case accepted

# expect PATTERN PROGRAM ARGS...: fails unless PROGRAM exits non-zero within
# 10 s with stderr matching PATTERN (an extended regex).
expect() {
  local pattern=$1 err rc
  shift
  err=$(timeout 10 "$@" 2>&1 >/dev/null)
  rc=$?
  if [[ $rc == 0 || $rc == 124 ]] || ! grep -qE "$pattern" <<<"$err"; then
    echo "FAIL: ${*#"$bin/"} -> status $rc, stderr: $err"
    failures=$((failures + 1))
  else
    echo "ok: ${*#"$bin/"} -> status $rc: $(head -n 1 <<<"$err")"
  fi
}

expect '^usage: echo_client' "$bin/echo_client"
expect '^usage: echo_client' "$bin/echo_client" 127.0.0.1:1 --msg 99999999999
expect '^usage: echo_client' "$bin/echo_client" 127.0.0.1:1 --msg 0
expect '^usage: echo_client' "$bin/echo_client" 127.0.0.1:1 --conns 100000000
expect '^usage: echo_client' "$bin/echo_client" 127.0.0.1:1 --conns 5x
expect '^usage: echo_client' "$bin/echo_client" 127.0.0.1:1 --seconds -1
expect '^usage: echo_client' "$bin/echo_client" 127.0.0.1:1 --seconds nan
expect '^usage: echo_client' "$bin/echo_client" 127.0.0.1:1 --conns
expect '^usage: echo_client' "$bin/echo_client" 127.0.0.1 --conns 4
for n in -1 0 abc 5x 99999999999; do
  expect '^usage: udp_echo' "$bin/udp_echo" 127.0.0.1:9 --ping "$n"
done
expect '^usage: udp_echo' "$bin/udp_echo" 127.0.0.1:99999
expect '^udp_echo: ' "$bin/udp_echo" 127.0.0.1:1 --ping 5  # nothing listens there
for n in -1 0 abc 3x 100000; do
  expect '^usage: embed_poll' "$bin/embed_poll" "$n"
done
expect '^usage: embed_poll' "$bin/embed_poll" 2 3
expect '^usage: echo_server' "$bin/echo_server"
expect '^usage: echo_server' "$bin/echo_server" 127.0.0.1:0 --cores abc
expect '^usage: echo_server' "$bin/echo_server" 127.0.0.1:0 --cores 0
expect '^usage: echo_server' "$bin/echo_server" 127.0.0.1:0 --mode bogus
expect '^usage: echo_server' "$bin/echo_server" nonsense
expect '^usage: http_hello' "$bin/http_hello"
expect '^usage: file_server' "$bin/file_server"
expect 'bad address or port' "$bin/file_server" 127.0.0.1:99999 --root "$dir"
expect 'bad address or port' "$bin/file_server" nonsense --root "$dir"
expect '^file_server: --root DIR is required' "$bin/file_server" 127.0.0.1:0
expect '^usage: file_server' "$bin/file_server" 127.0.0.1:0 --root
expect '^file_server: --root .*: Not a directory' "$bin/file_server" 127.0.0.1:0 --root "$0"
expect '^file_server: --root .*: No such file' "$bin/file_server" 127.0.0.1:0 --root "$dir/missing"
expect '^usage: file_server' "$bin/file_server" 127.0.0.1:0 --root "$dir" --cores 0
expect '^usage: file_server' "$bin/file_server" 127.0.0.1:0 --root "$dir" --idle -1
expect '^usage: file_server' "$bin/file_server" 127.0.0.1:0 --root "$dir" --tls onlycert
expect '^usage: file_server' "$bin/file_server" 127.0.0.1:0 --root "$dir" --bogus
expect '^file_server: ' "$bin/file_server" 127.0.0.1:0 --root "$dir" --tls "$dir/none.pem" "$dir/none.key"
expect '^usage: http_hello' "$bin/http_hello" 70000
if [[ -x "$bin/https_hello" ]]; then
  expect '^usage: https_hello' "$bin/https_hello"
  expect '^usage: https_hello' "$bin/https_hello" 127.0.0.1:0 --cert "$dir/c.pem"
  expect '^usage: https_hello' "$bin/https_hello" 70000 --cert "$dir/c.pem" --key "$dir/k.pem"
  expect '^usage: https_hello' "$bin/https_hello" 127.0.0.1:0 --cert "$dir/c.pem" --key
  expect '^usage: https_hello' "$bin/https_hello" 127.0.0.1:0 --bogus x
  expect '^https_hello: ' "$bin/https_hello" 127.0.0.1:0 --cert "$dir/none.pem" --key "$dir/none.pem"
  expect '^https_hello: ' "$bin/https_hello" 127.0.0.1:0 --cert "$dir" --key "$dir"
  expect '^usage: echo_server' "$bin/echo_server" 127.0.0.1:0 --tls "$dir/c.pem"
  expect '^echo_server: ' "$bin/echo_server" 127.0.0.1:0 --tls "$dir/none.pem" "$dir/none.pem"
  expect '^echo_server: --tls needs --mode plain' "$bin/echo_server" 127.0.0.1:0 --mode multishot --tls a b
  expect '^usage: echo_client' "$bin/echo_client" 127.0.0.1:1 --tls
  expect '^echo_client: ' "$bin/echo_client" 127.0.0.1:1 --tls "$dir/none.pem"
fi
expect '^usage: tcp_proxy' "$bin/tcp_proxy"
expect '^usage: tcp_proxy' "$bin/tcp_proxy" 127.0.0.1:0
expect '^usage: tcp_proxy' "$bin/tcp_proxy" 70000 127.0.0.1:1
expect '^usage: tcp_proxy' "$bin/tcp_proxy" 127.0.0.1:0 127.0.0.1
for n in -1 0 abc 5x nan 86401; do
  expect '^usage: tcp_proxy' "$bin/tcp_proxy" 127.0.0.1:0 127.0.0.1:1 --idle "$n"
done
expect '^usage: tcp_proxy' "$bin/tcp_proxy" 127.0.0.1:0 127.0.0.1:1 --grace 3601
expect '^usage: tcp_proxy' "$bin/tcp_proxy" 127.0.0.1:0 127.0.0.1:1 --grace
expect '^usage: tcp_proxy' "$bin/tcp_proxy" 127.0.0.1:0 127.0.0.1:1 --cores 0
expect '^usage: tcp_proxy' "$bin/tcp_proxy" 127.0.0.1:0 127.0.0.1:1 --cores 99999
expect '^usage: tcp_proxy' "$bin/tcp_proxy" 127.0.0.1:0 127.0.0.1:1 --bogus 1
expect '^tcp_proxy: ' "$bin/tcp_proxy" 127.0.0.1:0 no.such.host.invalid:80
expect '^usage: kv_server' "$bin/kv_server"
expect '^usage: kv_server' "$bin/kv_server" 70000
expect '^usage: kv_server' "$bin/kv_server" 127.0.0.1:99999
expect '^usage: kv_server' "$bin/kv_server" not-a-port
for n in 0 -1 abc 99999 1.5 ""; do
  expect '^usage: kv_server' "$bin/kv_server" 127.0.0.1:0 --cores "$n"
done
expect '^usage: kv_server' "$bin/kv_server" 127.0.0.1:0 --cores
expect '^usage: kv_server' "$bin/kv_server" 127.0.0.1:0 --idle 0
expect '^usage: kv_server' "$bin/kv_server" 127.0.0.1:0 --max-clients 0
expect '^usage: kv_server' "$bin/kv_server" 127.0.0.1:0 --max-bulk 0
expect '^usage: kv_server' "$bin/kv_server" 127.0.0.1:0 --max-inline 10
expect '^usage: kv_server' "$bin/kv_server" 127.0.0.1:0 --bogus 1
expect '^usage: copy_file' "$bin/copy_file" a b --qd 0
expect '^usage: copy_file' "$bin/copy_file" a b --bs 5x
expect '^usage: copy_file' "$bin/copy_file" a
expect '^usage: cat' "$bin/cat"
expect '^usage: vmem_walk' "$bin/vmem_walk" bogus
expect '^usage: vmem_walk' "$bin/vmem_walk" sync "$dir/img" extra

if [[ -x "$bin/coil-bench" ]]; then
  b="$bin/coil-bench"
  expect 'Is a directory' "$b" randread --file "$dir" --seconds 0.1
  expect 'Is a directory' "$b" scatter --file "$dir" --seconds 0.1
  expect '^usage: coil-bench' "$b" nop --tasks 0
  expect '^usage: coil-bench' "$b" nop --tasks 100000000
  expect '^usage: coil-bench' "$b" nop --seconds 1e300
  expect '^usage: coil-bench' "$b" nop --seconds inf
  expect '^usage: coil-bench' "$b" randread --size 99999999999G
  expect '^usage: coil-bench' "$b" randread --bs 1G
  expect '^usage: coil-bench' "$b" echo --conns abc
  expect '^usage: coil-bench' "$b" timers --max-ms 99999999999
  expect '^usage: coil-bench' "$b" scatter --reads 0
  expect '^usage: coil-bench' "$b" scatter --reads 99999999999G
  expect '^usage: coil-bench' "$b" scatter --seconds inf
  if "$b" --help | grep -q '^  tls '; then
    expect '^usage: coil-bench tls' "$b" tls
    expect '^usage: coil-bench tls' "$b" tls --mode bogus
    expect '^usage: coil-bench tls' "$b" tls --mode bulk --conns 0
    expect '^usage: coil-bench tls' "$b" tls --mode bulk --msg 1G
    expect '^usage: coil-bench tls' "$b" tls --mode handshake --rounds
    expect '^usage: coil-bench tls' "$b" tls --mode handshake --server-cpu 99999
  fi
  expect '^usage: coil-bench' "$b" bogus
fi

echo "bad_args_check: $failures failures"
[[ $failures == 0 ]]
