#!/usr/bin/env python3
"""kv_check.py: drives kv_server (and redis-server, for comparison) over raw
sockets. Modes:
  cross KV_PORT REDIS_PORT COUNT SEED  the same random RESP stream to both,
      replies compared byte for byte (TTL within 1 s and PTTL within 1000 ms:
      the two servers read the clock at slightly different moments)
  protocol KV_PORT REDIS_PORT          malformed requests to both, compared;
      half requests, oversized bulk (error, then the connection closes)
  idle KV_PORT COUNT                   COUNT silent clients, then still serving
  stop KV_PORT PID                     SIGTERM to PID during a pipelined batch
Prints "kv_check: OK" on success, exits 1 with the first difference."""
import random
import socket
import sys
import time


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class reader:
    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self.need(len(self.buf) + 1)
        i = self.buf.index(b"\r\n") + 2
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def reply(self):
        head = self.line()
        kind, rest = head[:1], head[1:-2]
        if kind == b"$" and int(rest) >= 0:
            self.need(int(rest) + 2)
            body, self.buf = self.buf[: int(rest) + 2], self.buf[int(rest) + 2 :]
            return head + body
        if kind == b"*" and int(rest) > 0:
            return head + b"".join(self.reply() for _ in range(int(rest)))
        return head


def encode(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def fail(msg):
    print("kv_check: FAIL: " + msg)
    sys.exit(1)


def random_command(rng):
    keys = [b"k%d" % i for i in range(24)] + [b"sp ace", b"\x00bin\xff"]
    key = lambda: rng.choice(keys)
    big = 2**63
    ints = [0, 1, -1, 7, 42, -100, big - 1, -big, big - 2, -big + 1, big, "12a", " 3", "+5", "007", "-0", ""]
    value = lambda: rng.choice(
        [rng.randrange(-1000, 1000), rng.choice(ints), b"v" * rng.randrange(0, 40), b"x\r\ny", rng.randbytes(8)]
    )
    r = rng.random()
    ops = [
        lambda: ["SET", key(), value()],
        lambda: ["GET", key()],
        lambda: ["INCR", key()],
        lambda: ["DECR", key()],
        lambda: ["INCRBY", key(), rng.choice(ints + [rng.randrange(-50, 50)])],
        lambda: ["DECRBY", key(), rng.choice(ints + [rng.randrange(-50, 50)])],
        lambda: ["DEL"] + [key() for _ in range(rng.randrange(1, 5))],
        lambda: ["EXISTS"] + [key() for _ in range(rng.randrange(1, 5))],
        lambda: ["MGET"] + [key() for _ in range(rng.randrange(1, 8))],
        lambda: ["MSET"] + sum([[key(), value()] for _ in range(rng.randrange(1, 5))], []),
        lambda: ["EXPIRE", key(), rng.choice([100, 1000, 0, -5, "x", big - 1, 2**62])]
        # GT and LT compare with a time set earlier, which two servers read
        # within the same millisecond or not: the session checks them instead.
        + rng.choice([[], ["NX"], ["XX"], ["NX", "XX"], ["GT", "LT"], ["BAD"]]),
        lambda: ["PEXPIRE", key(), rng.choice([100000, 5000000, -1])],
        lambda: ["TTL", key()],
        lambda: ["PTTL", key()],
        lambda: ["PERSIST", key()],
        lambda: ["SET", key(), value()]
        + rng.choice([["NX"], ["XX"], ["GET"], ["EX", 100], ["PX", 200000], ["EX", 0], ["EX", "x"], ["NX", "XX"],
                      ["KEEPTTL"], ["EX", 10, "KEEPTTL"], ["EX"], ["GET", "XX"], ["EX", big - 1], ["EX", 50, "EX", 60],
                      ["EX", 5, "PX", 5000], ["BOGUS"]]),
        lambda: ["SETNX", key(), value()],
        lambda: ["STRLEN", key()],
        lambda: ["APPEND", key(), value()],
        lambda: ["DBSIZE"],
        lambda: ["PING"] + rng.choice([[], ["hi"], ["a", "b"]]),
        lambda: ["ECHO", value()],
        lambda: rng.choice([["GET"], ["SET", key()], ["MSET", key()], ["MSET", key(), 1, key()], ["INCR"], ["TTL"],
                            ["NOSUCH", key(), "x" * 200], ["get", key(), key()], ["Ping", "a", "b", "c"]]),
    ]
    if r < 0.0005:
        return ["FLUSHALL"]
    return rng.choice(ops)()


def numeric(reply):
    if reply.startswith(b":"):
        return int(reply[1:-2])
    return None


def cross(kv_port, redis_port, count, seed):
    rng = random.Random(seed)
    a, b = connect(kv_port), connect(redis_port)
    ra, rb = reader(a), reader(b)
    for s in (a, b):
        s.sendall(encode(["FLUSHALL"]))
    ra.reply(), rb.reply()
    done = 0
    while done < count:
        batch = [random_command(rng) for _ in range(min(200, count - done))]
        data = b"".join(encode(c) for c in batch)
        a.sendall(data)
        b.sendall(data)
        for cmd in batch:
            x, y = ra.reply(), rb.reply()
            if x != y:
                name = str(cmd[0]).upper()
                nx, ny = numeric(x), numeric(y)
                if name in ("TTL", "PTTL") and nx is not None and ny is not None and nx >= 0 and ny >= 0:
                    if abs(nx - ny) <= (1 if name == "TTL" else 1000):
                        continue
                fail("after %d commands, %r: kv_server %r, redis-server %r" % (done, cmd, x, y))
            done += 1
    print("cross-check: %d commands, identical replies" % done)


def exchange(port, data, close_expected):
    """Sends data, reads until the server closes or 1 s of silence."""
    s = connect(port)
    s.sendall(data)
    s.settimeout(1.0)
    out = b""
    closed = False
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            out += chunk
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    if close_expected and not closed:
        fail("%r: the connection stays open" % data[:60])
    return out


def protocol(kv_port, redis_port):
    cases = [
        (b"*abc\r\n", True),
        (b"*2\r\n$3\r\nGET\r\n+oops\r\n", True),
        (b"*1\r\n$-5\r\n", True),
        (b"*1\r\n$99999999999999999999\r\n", True),
        (b"*1\r\n$2000000\r\n", True),  # over both servers' 1 MB bulk limit
        (b"*3000000000\r\n", True),
        (b'SET "a\r\n', True),
        (b"PING\r\nPING\r\n*0\r\n*-1\r\n\r\n  \r\nPING\r\n", False),
        (b"set k 'it''s'\r\n", True),
        (b'set k "a\\x41\\n"\r\nget k\r\nstrlen k\r\n', False),
        (b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n*1\r\n$4\r\nQUIT\r\nPING\r\n", True),
        (b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\nx\r\n", True),
        (b"x" * 70000, True),  # inline over 64 KiB
        (b"*1\r\n$" + b"1" * 70000, True),
    ]
    for data, closes in cases:
        x = exchange(kv_port, data, closes)
        y = exchange(redis_port, data, closes)
        if x != y:
            fail("%r: kv_server %r, redis-server %r" % (data[:60], x[:200], y[:200]))
    # Half requests: a request in pieces, one byte at a time, then answered.
    s = connect(kv_port)
    req = encode(["SET", "half", "x" * 1000]) + b"GET half\r\n"
    for i in range(0, len(req), 7):
        s.sendall(req[i : i + 7])
    r = reader(s)
    if r.reply() != b"+OK\r\n" or r.reply() != b"$1000\r\n" + b"x" * 1000 + b"\r\n":
        fail("a request sent in pieces")
    # A value larger than the read buffer streams through it.
    big = b"y" * 500000
    s.sendall(encode(["SET", "big", big]) + encode(["STRLEN", "big"]) + encode(["GET", "big"]))
    if r.reply() != b"+OK\r\n" or r.reply() != b":500000\r\n" or r.reply() != b"$500000\r\n" + big + b"\r\n":
        fail("a 500 KB value")
    s.close()
    # Oversized bulk while more data follows: the error, then the close.
    x = exchange(kv_port, b"*2\r\n$3\r\nGET\r\n$3000000\r\n" + b"z" * 100000, True)
    if x != b"-ERR Protocol error: invalid bulk length\r\n":
        fail("oversized bulk: %r" % x)
    print("protocol: %d malformed cases as redis-server, half requests, big values, oversized bulk" % len(cases))


def idle(kv_port, count):
    socks = [connect(kv_port) for _ in range(count)]
    s = connect(kv_port)
    r = reader(s)
    s.sendall(encode(["SET", "idle", "ok"]) + encode(["GET", "idle"]))
    if r.reply() != b"+OK\r\n" or r.reply() != b"$2\r\nok\r\n":
        fail("serving with %d idle clients" % count)
    # Every idle client is still connected and answers.
    for c in socks[:: max(1, count // 20)]:
        c.sendall(b"PING\r\n")
        if reader(c).reply() != b"+PONG\r\n":
            fail("an idle client")
    for c in socks:
        c.close()
    print("idle: %d idle clients, still serving" % count)


def stop(kv_port, pid):
    """SIGTERM while a pipelined batch is being answered: every request the
    server had received is answered in whole before the connection ends."""
    import os
    import signal

    count = 2000
    s = connect(kv_port)
    s.sendall(b"PING\r\n" * count)
    r = reader(s)
    if r.reply() != b"+PONG\r\n":
        fail("the first reply of the batch")
    os.kill(pid, signal.SIGTERM)
    got = 1
    try:
        while True:
            if r.reply() != b"+PONG\r\n":
                fail("a reply during the stop")
            got += 1
    except (EOFError, ConnectionResetError):
        pass
    if r.buf:
        fail("a cut reply at the stop: %r" % r.buf[:40])
    if got != count:
        fail("%d of %d replies before the stop closed the connection" % (got, count))
    print("stop: %d pipelined replies, all written out" % got)


def main():
    mode = sys.argv[1]
    if mode == "cross":
        cross(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "protocol":
        protocol(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "stop":
        stop(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "idle":
        idle(int(sys.argv[2]), int(sys.argv[3]))
    print("kv_check: OK")


if __name__ == "__main__":
    main()
