#!/usr/bin/env python3
"""conn_flood.py: hostile connection patterns against `mlreg serve`, for
test_conn_hostile.sh. Each subcommand prints `key=value` lines that the
script checks; times are seconds, measured with a monotonic clock.

  trickle HOST PORT N SRC [SRC...] --probe-src P --for SECONDS
      opens N connections from each SRC address, sends a request line and
      then one header line every 0.4 s on each, never ending the head;
      meanwhile a probe from address P asks GET /api/v1/health every 0.2 s,
      each on a new connection. Prints when each trickling connection was
      closed by the server and how the probes fared.
  idle HOST PORT SRC
      one request on a keep-alive connection, then the next request's head
      trickled a byte at a time: prints when the server closed it.
  slowbody HOST PORT SRC SECONDS
      a monolithic blob upload whose body trickles for SECONDS: prints the
      status it got.
  overlimit HOST PORT SRC HOLD
      holds HOLD connections from SRC with unfinished heads, then sends 3
      complete requests (GET /v2/over-limit-K/tags/list) on 3 more: prints
      how many of those got any reply bytes before the server closed them.
  v6hold HOST PORT SRC [SRC...]
      one unfinished request head from each IPv6 address SRC, in order:
      prints which of them the server closed at once (an IPv6 client is
      counted by its /64).
  frame HOST PORT CASE
      sends a request with ambiguous framing (two Content-Length headers,
      or Content-Length with Transfer-Encoding) followed by a second,
      smuggled request; prints every status line received and whether the
      server closed the connection.
"""
import hashlib
import select
import socket
import sys
import threading
import time


def connect(host, port, src, timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect((host, port))
    return s


def closed_by_peer(s):
    """True when the peer has closed (EOF or reset); never blocks."""
    try:
        r, _, _ = select.select([s], [], [], 0)
        if not r:
            return False
        return s.recv(4096) == b""
    except OSError:
        return True


def status_line(s, bufsize=4096):
    """Reads until the first line of the answer is in (or the peer closes)."""
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(bufsize)
        if not chunk:
            break
        data += chunk
    return data


def probe_loop(host, port, src, until, out):
    worst, fails, n = 0.0, 0, 0
    while time.monotonic() < until:
        t = time.monotonic()
        ok = False
        try:
            s = connect(host, port, src, timeout=3.0)
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
            ok = status_line(s, 256).startswith(b"HTTP/1.1 200")
            s.close()
        except OSError:
            pass
        dt = time.monotonic() - t
        worst = max(worst, dt)
        n += 1
        if not ok:
            fails += 1
        time.sleep(0.2)
    out.update(probes=n, probe_fails=fails, probe_worst=round(worst, 3))


def trickle(args):
    host, port, n = args[0], int(args[1]), int(args[2])
    srcs, probe_src, duration = [], None, 5.0
    i = 3
    while i < len(args):
        if args[i] == "--probe-src":
            probe_src = args[i + 1]
            i += 2
        elif args[i] == "--for":
            duration = float(args[i + 1])
            i += 2
        else:
            srcs.append(args[i])
            i += 1
    t0 = time.monotonic()
    socks, closed_at, connect_failed = [], {}, 0
    for src in srcs:
        for _ in range(n):
            try:
                s = connect(host, port, src)
                s.sendall(b"GET /api/v1/health HTTP/1.1\r\n")
                socks.append(s)
            except OSError:
                connect_failed += 1
    opened = time.monotonic() - t0
    probe = {}
    th = None
    if probe_src:
        th = threading.Thread(target=probe_loop,
                              args=(host, port, probe_src, t0 + duration, probe))
        th.start()
    k = 0
    next_line = time.monotonic() + 0.4
    while time.monotonic() < t0 + duration:
        now = time.monotonic()
        for idx, s in enumerate(socks):
            if idx not in closed_at and closed_by_peer(s):
                closed_at[idx] = now - t0
        if now >= next_line:
            k += 1
            for idx, s in enumerate(socks):
                if idx in closed_at:
                    continue
                try:
                    s.sendall(b"X-Trickle-%d: %d\r\n" % (k, k))
                except OSError:
                    closed_at[idx] = time.monotonic() - t0
            next_line += 0.4
        time.sleep(0.05)
    if th:
        th.join()
    times = sorted(closed_at.values())
    print("connections=%d" % len(socks))
    print("connect_failed=%d" % connect_failed)
    print("opened_in=%.3f" % opened)
    print("closed_within_1s=%d" % sum(1 for t in times if t <= 1.0))
    print("closed=%d" % len(times))
    print("open_at_end=%d" % (len(socks) - len(times)))
    print("last_closed_at=%.3f" % (times[-1] if times else -1))
    for key, v in probe.items():
        print("%s=%s" % (key, v))
    for s in socks:
        s.close()


def idle(args):
    host, port, src = args[0], int(args[1]), args[2]
    s = connect(host, port, src)
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: idle\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        body += s.recv(4096)
    print("first_status=%s" % head.split(b" ")[1].decode())
    t0 = time.monotonic()
    nxt = b"GET /api/v1/health HTTP/1.1\r\nHost: idle\r\nX-Slow: " + b"a" * 200
    i = 0
    closed = -1.0
    while time.monotonic() - t0 < 15:
        if closed_by_peer(s):
            closed = time.monotonic() - t0
            break
        if i < len(nxt):
            try:
                s.sendall(nxt[i:i + 1])
            except OSError:
                closed = time.monotonic() - t0
                break
            i += 1
        time.sleep(0.3)
    print("idle_closed_at=%.3f" % closed)


def slowbody(args):
    host, port, src, secs = args[0], int(args[1]), args[2], float(args[3])
    pieces = 8
    body = b"slow body bytes " * 64
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    s = connect(host, port, src, timeout=secs + 10)
    s.sendall(("POST /v2/slow/body/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: slow\r\n"
               "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
               % (digest, len(body))).encode())
    step = len(body) // pieces
    for i in range(pieces):
        time.sleep(secs / pieces)
        end = len(body) if i == pieces - 1 else (i + 1) * step
        s.sendall(body[i * step:end])
    data = status_line(s)
    print("slowbody_status=%s" % (data.split(b" ")[1].decode() if data else "closed"))


def overlimit(args):
    host, port, src, hold = args[0], int(args[1]), args[2], int(args[3])
    holders = []
    for _ in range(hold):
        s = connect(host, port, src)
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\n")
        holders.append(s)
    time.sleep(0.3)
    replies = 0
    for k in range(3):
        s = connect(host, port, src)
        try:
            s.sendall(b"GET /v2/over-limit-%d/tags/list HTTP/1.1\r\nHost: x\r\n\r\n" % k)
            if s.recv(4096):
                replies += 1
        except OSError:
            pass
        s.close()
    print("over_limit_replies=%d" % replies)
    for s in holders:
        s.close()


def v6hold(args):
    host, port = args[0], int(args[1])
    socks = []
    for src in args[2:]:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(5)
        s.bind((src, 0))
        s.connect((host, port))
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\n")
        socks.append((src, s))
        time.sleep(0.05)
    time.sleep(0.5)
    print("closed=%s" % ",".join(src for src, s in socks if closed_by_peer(s)))
    for _, s in socks:
        s.close()


def frame(args):
    host, port, case = args[0], int(args[1]), args[2]
    smuggled = b"GET /v2/smuggled/tags/list HTTP/1.1\r\nHost: x\r\n\r\n"
    if case == "two-lengths":
        req = (b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
               b"Content-Length: %d\r\n\r\n" % len(smuggled)) + smuggled
    elif case == "length-and-chunked":
        req = (b"POST /v2/m/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n") + smuggled
    elif case == "two-encodings":
        req = (b"POST /v2/m/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n") + smuggled
    else:
        print("unknown case %s" % case)
        sys.exit(2)
    s = connect(host, port, "127.0.0.1")
    s.sendall(req)
    data = b""
    closed = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < 5:
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            break
        except OSError:
            closed = 1
            break
        if not chunk:
            closed = 1
            break
        data += chunk
    statuses = [line.split(b" ")[1].decode() for line in data.split(b"\r\n")
                if line.startswith(b"HTTP/1.")]
    print("statuses=%s" % ",".join(statuses))
    print("closed=%d" % closed)


if __name__ == "__main__":
    cmds = {"trickle": trickle, "idle": idle, "slowbody": slowbody, "overlimit": overlimit,
            "v6hold": v6hold, "frame": frame}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        print(__doc__)
        sys.exit(2)
    cmds[sys.argv[1]](sys.argv[2:])
