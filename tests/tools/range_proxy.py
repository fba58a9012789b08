#!/usr/bin/env python3
"""range_proxy.py: an HTTP proxy in front of `mlreg serve` for the pull tests.

    range_proxy.py UPSTREAM_URL READY_FILE LOG_FILE [--corrupt A-B] [--corrupt-times N]

Listens on 127.0.0.1 (an OS-chosen port, written as its URL to READY_FILE),
forwards every request to UPSTREAM_URL and streams the answer back. For each
request it appends one JSON line to LOG_FILE when the answer is done (or the
client went away): method, path, the Range asked for, status, and "bytes",
the response body bytes it managed to write to the client.

--no-range drops the Range header of every request: a registry that serves
whole blobs only.

--corrupt A-B flips one byte in the middle of the body of a GET whose Range
is exactly "bytes=A-B", for the first N such answers (--corrupt-times,
default 1): the bytes a client sees are then not the chunk it asked for.
"""
import http.client
import http.server
import json
import socketserver
import sys
import threading
import urllib.parse

BLOCK = 64 * 1024


def main():
    args = sys.argv[1:]
    if len(args) < 3:
        sys.exit(__doc__)
    upstream, ready, logpath = args[0], args[1], args[2]
    corrupt, times, no_range = None, 1, False
    rest = args[3:]
    while rest:
        if rest[0] == "--no-range":
            no_range = True
            rest = rest[1:]
            continue
        if rest[0] == "--corrupt":
            corrupt = "bytes=" + rest[1]
        elif rest[0] == "--corrupt-times":
            times = int(rest[1])
        else:
            sys.exit("unknown option " + rest[0])
        rest = rest[2:]
    up = urllib.parse.urlsplit(upstream)
    lock = threading.Lock()
    state = {"corrupted": 0}

    def log(entry):
        with lock:
            with open(logpath, "a") as f:
                f.write(json.dumps(entry) + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def forward(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "connection")
                       and not (no_range and k.lower() == "range")}
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            rng = self.headers.get("Range")
            flip = None
            if self.command == "GET" and corrupt and rng == corrupt:
                with lock:
                    if state["corrupted"] < times:
                        state["corrupted"] += 1
                        flip = int(resp.getheader("Content-Length") or 0) // 2
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("connection", "transfer-encoding"):
                    self.send_header(k, v)
            self.end_headers()
            sent = 0
            try:
                while True:
                    block = resp.read(BLOCK)
                    if not block:
                        break
                    if flip is not None and sent <= flip < sent + len(block):
                        b = bytearray(block)
                        b[flip - sent] ^= 0xFF
                        block = bytes(b)
                    self.wfile.write(block)
                    sent += len(block)
                self.wfile.flush()
            finally:
                log({"method": self.command, "path": self.path, "range": rng,
                     "status": resp.status, "bytes": sent, "corrupted": flip is not None})
                conn.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = forward

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            # a client killed on purpose (the resume test) is not news
            if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
                super().handle_error(request, client_address)

    srv = Server(("127.0.0.1", 0), Handler)
    with open(ready + ".tmp", "w") as f:
        f.write("http://127.0.0.1:%d" % srv.server_address[1])
    import os
    os.rename(ready + ".tmp", ready)
    srv.serve_forever()


if __name__ == "__main__":
    main()
