#!/usr/bin/env bash
# file_server_check.sh FILE_SERVER MODE: starts file_server on a free port of
# 127.0.0.1 over a root made in a temp dir and checks it with real clients.
#   basic  curl (headers, HEAD, ranges, 304, keep-alive, content types,
#          errors), raw requests from python3 (pipelining, HTTP/1.0, 400,
#          405, 414, 431, a traversal corpus), a slowloris client and an idle
#          one cut off by the timeouts, a wrk smoke run, SIGTERM -> exit 0
#   follow the symlink out of the root, refused before, served with
#          --follow-symlinks
#   cores  --cores 2 --large-body splice: curl (whole files and ranges), the traversal
#          corpus and wrk
#   tls    --tls with a CA and certificate made here by the openssl CLI: curl
#          over https (keep-alive, ranges, 304), an untrusted client refused
set -euo pipefail
server=$1
mode=$2
dir=$(mktemp -d)
pid=
trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
fail() {
  echo "file_server_check: FAIL: $*"
  [[ -f $dir/out ]] && sed 's/^/  server: /' "$dir/out"
  exit 1
}

root=$dir/root
mkdir -p "$root/sub" "$root/empty"
printf 'hello, file server\n' >"$root/hello.txt"
printf '<p>index</p>\n' >"$root/sub/index.html"
printf 'body{}\n' >"$root/style.css"
printf 'TOPSECRET-outside-the-root\n' >"$dir/secret.txt"
ln -s ../secret.txt "$root/out"
ln -s hello.txt "$root/in"
ln -s / "$root/slash"
head -c 1048576 /dev/urandom >"$root/big.bin"
head -c 1024 /dev/urandom >"$root/one.bin"
touch -d '2024-01-02 03:04:05 UTC' "$root/hello.txt"
mkfifo "$root/fifo"

start() {
  "$server" 127.0.0.1:0 --root "$root" "$@" >"$dir/out" 2>&1 &
  pid=$!
  for _ in $(seq 200); do
    grep -q "listening on" "$dir/out" && break
    sleep 0.05
  done
  port=$(sed -nE 's/.*listening on [^ ]*:([0-9]+).*/\1/p' "$dir/out" | head -n 1)
  [[ -n "$port" ]] || fail "the server did not start"
  base=http://127.0.0.1:$port
}

stop() {
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  pid=
  [[ $rc == 0 ]] || fail "exit status $rc after SIGTERM"
  echo "file_server_check: SIGTERM: exit 0"
}

# The raw client, python3: exchange() sends bytes on a new connection and
# returns what comes back until the server closes (at most 20 s).
client='
import codecs, socket, sys
def exchange(data):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.settimeout(20)
    s.sendall(data)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return out
'

# raw REQUEST: sends the bytes (printf escapes) and prints the answer.
raw() {
  printf "%b" "$1" | python3 -c "$client"'
sys.stdout.buffer.write(exchange(sys.stdin.buffer.read()))
' "$port"
}

status_of() { head -n 1 | cut -d' ' -f2; }

# requests: each stdin line is "WANT REQUEST" (WANT a status or several
# joined by |, REQUEST with Python escapes such as \r\n), each sent on its
# own connection in one python3 run; fails on a status not wanted or on any
# byte of the files outside the root in an answer.
requests() {
  python3 -c "$client"'
bad, n = 0, 0
for line in sys.stdin.read().splitlines():
    want, req = line.split(" ", 1)
    out = exchange(codecs.escape_decode(req.encode())[0])
    n += 1
    code = out.split(b" ", 2)[1].decode() if out.startswith(b"HTTP/1.1 ") else "none"
    if code not in want.split("|") or b"TOPSECRET" in out or b"root:" in out:
        print(f"  {req[:80]!r} -> {code} (want {want})")
        bad += 1
print(f"file_server_check: {n} raw requests, {bad} wrong")
sys.exit(1 if bad else 0)
' "$port"
}

# The traversal corpus: every request gets 400, 403 or 404 and never a
# byte of the file outside the root.
traversal() {
  local t
  local targets=(
    "/../secret.txt" "/..%2fsecret.txt" "/%2e%2e/secret.txt" "/%2e%2e%2fsecret.txt" "/%2E%2E/secret.txt"
    "/sub/../../secret.txt" "/sub/%2e%2e/%2e%2e/secret.txt" "/./../secret.txt" "/sub/..%2f..%2fsecret.txt"
    "/hello.txt%00.html" "/%00" "/..%5csecret.txt" "/..\\\\secret.txt" "/%5c..%5csecret.txt"
    "/out" "/out/" "/slash/etc/passwd" "/slash/$dir/secret.txt" "$dir/secret.txt" "../secret.txt"
    "http://x/../secret.txt" "/sub/%2f%2e%2e%2f%2e%2e%2fsecret.txt" "/%" "/%zz" "/%2"
    "/fifo" "/empty" "/.." "/sub/.." "/%2e%2e" "/hello.txt/.." "/hello.txt/../../secret.txt"
  )
  for t in "${targets[@]}"; do
    printf '400|403|404 GET %s HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n\n' "$t"
  done | requests || fail "the traversal corpus"
  # "/sub/.." and "/hello.txt/.." name the root (a directory: 403), "/.."
  # is above it (400): all in the set above; the server still answers.
  [[ $(curl -s "$base/hello.txt") == "hello, file server" ]] || fail "after the corpus"
  echo "file_server_check: traversal corpus: ${#targets[@]} requests, all 400/403/404, nothing from outside"
}

wrk_smoke() {
  local out
  out=$(wrk -t1 -c8 -d1s "$base/$1" 2>&1)
  grep -qE "requests in" <<<"$out" || fail "wrk: $out"
  grep -qE "Non-2xx|Socket errors" <<<"$out" && fail "wrk reported errors: $out"
  echo "file_server_check: wrk $1: $(grep -E 'requests in' <<<"$out" | sed 's/^ *//'), no errors"
}

curl_basics() {
  local h body
  # Body and headers of a small file.
  h=$(curl -sS -D - -o "$dir/got" "$base/hello.txt")
  cmp -s "$dir/got" "$root/hello.txt" || fail "hello.txt body"
  grep -q "^HTTP/1.1 200 OK" <<<"$h" || fail "status: $h"
  grep -qi "^Content-Type: text/plain" <<<"$h" || fail "content type: $h"
  grep -qi "^Content-Length: 19" <<<"$h" || fail "content length: $h"
  grep -qi "^Last-Modified: Tue, 02 Jan 2024 03:04:05 GMT" <<<"$h" || fail "last-modified: $h"
  grep -qiE "^Date: [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT" <<<"$h" || fail "date: $h"
  grep -qi "^Server: " <<<"$h" || fail "server: $h"
  grep -qi "^Accept-Ranges: bytes" <<<"$h" || fail "accept-ranges: $h"
  [[ $(curl -sS -o /dev/null -w '%{content_type}' "$base/style.css") == text/css ]] || fail "css type"
  [[ $(curl -sS -o /dev/null -w '%{content_type}' "$base/big.bin") == application/octet-stream ]] || fail "bin type"
  # Large and 1 KiB files, byte for byte.
  curl -sS -o "$dir/got" "$base/big.bin" && cmp -s "$dir/got" "$root/big.bin" || fail "big.bin differs"
  curl -sS -o "$dir/got" "$base/one.bin" && cmp -s "$dir/got" "$root/one.bin" || fail "one.bin differs"
  # HEAD: the headers of GET, no body.
  h=$(curl -sS -I "$base/big.bin")
  grep -qi "^Content-Length: 1048576" <<<"$h" || fail "HEAD length: $h"
  # Ranges: a-b, a-, -n (the last bytes), across the splice threshold too.
  curl -sS -r 10-19 -o "$dir/got" -D "$dir/h" "$base/big.bin"
  cmp -s "$dir/got" <(tail -c +11 "$root/big.bin" | head -c 10) || fail "range 10-19"
  grep -qi "^HTTP/1.1 206" "$dir/h" && grep -qi "^Content-Range: bytes 10-19/1048576" "$dir/h" || fail "206 headers"
  curl -sS -r 1000000- -o "$dir/got" "$base/big.bin"
  cmp -s "$dir/got" <(tail -c +1000001 "$root/big.bin") || fail "range 1000000-"
  curl -sS -r -100 -o "$dir/got" -D "$dir/h" "$base/big.bin"
  cmp -s "$dir/got" <(tail -c 100 "$root/big.bin") || fail "range -100"
  grep -qi "^Content-Range: bytes 1048476-1048575/1048576" "$dir/h" || fail "suffix range headers"
  curl -sS -r 1-524288 -o "$dir/got" "$base/big.bin"
  cmp -s "$dir/got" <(tail -c +2 "$root/big.bin" | head -c 524288) || fail "range 1-524288"
  curl -sS -r 5-1000000000 -o "$dir/got" "$base/hello.txt"
  [[ $(cat "$dir/got") == ", file server" ]] || fail "a range past the end is cut at the end"
  h=$(curl -sS -r 2000000- -D - -o /dev/null "$base/big.bin")
  grep -q "^HTTP/1.1 416" <<<"$h" && grep -qi "^Content-Range: bytes \*/1048576" <<<"$h" || fail "416: $h"
  # Several ranges: the whole file, 200.
  [[ $(curl -sS -r 0-1,5-6 -o "$dir/got" -w '%{http_code}' "$base/hello.txt") == 200 ]] || fail "multi-range"
  cmp -s "$dir/got" "$root/hello.txt" || fail "multi-range body"
  # If-Modified-Since: 304 at or after the file's time, 200 before it.
  [[ $(curl -sS -o /dev/null -w '%{http_code}' -H 'If-Modified-Since: Tue, 02 Jan 2024 03:04:05 GMT' \
    "$base/hello.txt") == 304 ]] || fail "304"
  [[ $(curl -sS -o /dev/null -w '%{http_code}' -H 'If-Modified-Since: Tue, 02 Jan 2024 03:04:04 GMT' \
    "$base/hello.txt") == 200 ]] || fail "If-Modified-Since before the change"
  [[ $(curl -sS -o /dev/null -w '%{http_code}' -H 'If-Modified-Since: yesterday' "$base/hello.txt") == 200 ]] ||
    fail "a bad If-Modified-Since is ignored"
  # Keep-alive: five URLs on one curl share one connection, 404 included.
  body=$(curl -sS -w '|%{http_code}|%{num_connects}\n' "$base/hello.txt" "$base/style.css" "$base/nope" \
    "$base/sub/" "$base/in" -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null)
  [[ $(tr '\n' ' ' <<<"$body") == "|200|1 |200|0 |404|0 |200|0 |200|0 " ]] || fail "keep-alive: $body"
  # Errors: 404, 403 for a directory without index.html, 405 with Allow.
  [[ $(curl -sS -o "$dir/got" -w '%{http_code}' "$base/nope.txt") == 404 ]] || fail "404"
  grep -q "<h1>404 Not Found</h1>" "$dir/got" || fail "404 body"
  [[ $(curl -sS -o /dev/null -w '%{http_code}' "$base/empty/") == 403 ]] || fail "directory listing"
  [[ $(curl -sS -o "$dir/got" -w '%{http_code}' "$base/sub/") == 200 ]] && grep -q index "$dir/got" || fail "index"
  h=$(curl -sS -X POST -d x -D - -o /dev/null "$base/hello.txt")
  grep -q "^HTTP/1.1 405" <<<"$h" && grep -qi "^Allow: GET, HEAD" <<<"$h" || fail "405: $h"
  echo "file_server_check: curl: headers, HEAD, ranges, 416, 304, keep-alive, 403/404/405 OK"
}

raw_requests() {
  local reply
  # Pipelining: three requests in one write, answered in order, the last closes.
  reply=$(raw "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\nHEAD /style.css HTTP/1.1\r\nHost: x\r\n\r\nGET /style.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
  [[ $(grep -c "^HTTP/1.1 200 OK" <<<"$reply") == 3 ]] || fail "pipelining: $reply"
  [[ $(grep -c "^body{}" <<<"$reply") == 1 && $(grep -c "^hello, file server" <<<"$reply") == 1 ]] ||
    fail "pipelined bodies: $reply"
  grep -qi "^Connection: close" <<<"$reply" || fail "Connection: close not echoed"
  # HTTP/1.0: closes after the answer unless keep-alive is asked for.
  reply=$(raw "GET /hello.txt HTTP/1.0\r\n\r\n")
  grep -q "^hello, file server" <<<"$reply" || fail "HTTP/1.0: $reply"
  reply=$(raw "GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /style.css HTTP/1.0\r\n\r\n")
  grep -qi "^Connection: keep-alive" <<<"$reply" && grep -q "^body{}" <<<"$reply" || fail "1.0 keep-alive: $reply"
  # Malformed heads: 400 (and the close), 405, 505, 414, 431.
  local long
  long=$(head -c 9000 /dev/zero | tr '\0' a)
  requests <<EOF || fail "malformed requests"
400 GARBAGE\r\n\r\n
400 GET /hello.txt HTTP/1.1\r\n\r\n
400 GET /hello.txt HTTP/1.1\r\nHost: x\r\nBad header\r\n\r\n
400 GET /hello.txt HTTP/1.1\r\nHost: x\r\n folded: header\r\n\r\n
400 GET  HTTP/1.1\r\nHost: x\r\n\r\n
400 get /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n
400 GET /hello.txt HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n
400 GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n
405 DELETE /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n
505 GET /hello.txt HTTP/2.0\r\nHost: x\r\n\r\n
414 GET /$long HTTP/1.1\r\nHost: x\r\n\r\n
414 GET /$long
EOF
  reply=$(raw "GET /hello.txt HTTP/1.1\r\nHost: x\r\n$(for i in $(seq 40); do printf 'X-Filler-%d: %s\\r\\n' "$i" "${long:0:500}"; done)\r\n")
  [[ $(status_of <<<"$reply") == 431 ]] || fail "431: $(head -n 1 <<<"$reply")"
  grep -q "<h1>431 Request Header Fields Too Large</h1>" <<<"$reply" || fail "431 body"
  echo "file_server_check: pipelining, HTTP/1.0, 400/405/414/431/505 OK"
}

# A client dribbling its head one byte at a time is cut off by the head's
# deadline (--header-timeout 1), not kept alive by each byte; an idle
# connection is closed by --idle. Each waits at most 30 s for the close.
timeouts() {
  python3 - "$port" <<'EOF' || fail "timeouts"
import socket, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(0.2)
head = b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 1000
closed = False
start = time.monotonic()
for i, b in enumerate(head):
    try:
        s.send(bytes([b]))
    except (BrokenPipeError, ConnectionResetError):
        closed = True
        break
    try:
        if s.recv(100) == b"":
            closed = True
            break
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
        break
    if time.monotonic() - start > 30:
        break
print(f"slowloris: closed={closed} after {i + 1} bytes")
if not closed:
    sys.exit(1)
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(30)
try:
    idle_closed = s.recv(100) == b""
except ConnectionResetError:
    idle_closed = True
print(f"idle: closed={idle_closed}")
sys.exit(0 if idle_closed else 1)
EOF
  echo "file_server_check: slowloris and idle clients cut off"
}

case $mode in
  basic)
    start --header-timeout 1 --idle 2
    curl_basics
    raw_requests
    traversal
    timeouts
    wrk_smoke one.bin
    wrk_smoke big.bin
    stop
    ;;
  follow)
    start
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$base/out") == 403 ]] || fail "the symlink out was followed"
    stop
    start --follow-symlinks
    [[ $(curl -s "$base/out") == TOPSECRET-outside-the-root ]] || fail "--follow-symlinks did not follow"
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$base/../secret.txt") == 404 ]] || fail "'..' with --follow-symlinks"
    echo '400 GET /../secret.txt HTTP/1.1\r\nHost: x\r\n\r\n' | requests || fail "'..' above the root"
    echo "file_server_check: the symlink out: 403, then served with --follow-symlinks"
    stop
    ;;
  cores)
    start --cores 2 --large-body splice
    for _ in 1 2 3 4; do
      curl -sS -o "$dir/got" "$base/big.bin" && cmp -s "$dir/got" "$root/big.bin" || fail "big.bin on 2 cores"
    done
    curl -sS -r 1-524288 -o "$dir/got" "$base/big.bin"
    cmp -s "$dir/got" <(tail -c +2 "$root/big.bin" | head -c 524288) || fail "spliced range 1-524288"
    traversal
    wrk_smoke one.bin
    stop
    ;;
  tls)
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    openssl req -x509 "${ec[@]}" -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 2 -subj /CN=fs-check-ca 2>/dev/null
    openssl req "${ec[@]}" -keyout "$dir/key.pem" -out "$dir/cert.csr" -subj /CN=localhost 2>/dev/null
    echo "subjectAltName=DNS:localhost,IP:127.0.0.1" >"$dir/ext"
    openssl x509 -req -in "$dir/cert.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
      -out "$dir/cert.pem" -days 1 -extfile "$dir/ext" 2>/dev/null
    start --tls "$dir/cert.pem" "$dir/key.pem"
    url=https://localhost:$port
    c=(curl -sS --cacert "$dir/ca.pem" --resolve "localhost:$port:127.0.0.1")
    "${c[@]}" -o "$dir/got" "$url/big.bin" && cmp -s "$dir/got" "$root/big.bin" || fail "https big.bin"
    body=$("${c[@]}" -w '|%{http_code}|%{num_connects}\n' "$url/hello.txt" "$url/nope" "$url/one.bin" \
      -o /dev/null -o /dev/null -o /dev/null)
    [[ $(tr '\n' ' ' <<<"$body") == "|200|1 |404|0 |200|0 " ]] || fail "https keep-alive: $body"
    "${c[@]}" -r -100 -o "$dir/got" "$url/big.bin"
    cmp -s "$dir/got" <(tail -c 100 "$root/big.bin") || fail "https range"
    [[ $("${c[@]}" -o /dev/null -w '%{http_code}' -H 'If-Modified-Since: Tue, 02 Jan 2024 03:04:05 GMT' \
      "$url/hello.txt") == 304 ]] || fail "https 304"
    [[ $("${c[@]}" -o /dev/null -w '%{http_code}' "$url/../secret.txt") == 404 ]] || fail "https traversal"
    if curl -sS --resolve "localhost:$port:127.0.0.1" "$url/hello.txt" >/dev/null 2>&1; then
      fail "an untrusted certificate was accepted"
    fi
    [[ $("${c[@]}" "$url/hello.txt") == "hello, file server" ]] || fail "after a refused handshake"
    echo "file_server_check: https: body, keep-alive, range, 304, untrusted client refused"
    stop
    ;;
  *)
    fail "unknown mode $mode"
    ;;
esac
echo "file_server_check: OK"
