#!/usr/bin/env python3
"""webhook_receiver.py DIR [PORT]: a webhook receiver for test_events.sh.

Listens on 127.0.0.1:PORT (0 or absent: a free port, written to DIR/port)
and records every POST as DIR/NNNNNN.body (the exact bytes) and
DIR/NNNNNN.headers (JSON object of the headers, names lower-cased), NNNNNN
counting from 1 in arrival order. It answers with the status in DIR/status
(default 200); a request that arrives while DIR/hang exists is held until
the file goes (at most 30 s) and then answered 503 without being recorded.
"""
import http.server
import json
import os
import sys
import threading
import time

DIR = sys.argv[1]
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 0
LOCK = threading.Lock()


def next_name():
    n = 1
    while os.path.exists(os.path.join(DIR, "%06d.body" % n)):
        n += 1
    return os.path.join(DIR, "%06d" % n)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if os.path.exists(os.path.join(DIR, "hang")):
            until = time.time() + 30
            while os.path.exists(os.path.join(DIR, "hang")) and time.time() < until:
                time.sleep(0.1)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            with open(os.path.join(DIR, "status")) as f:
                status = int(f.read().strip() or "200")
        except FileNotFoundError:
            status = 200
        if 200 <= status < 300:
            with LOCK:
                base = next_name()
                with open(base + ".headers.tmp", "w") as f:
                    json.dump({k.lower(): v for k, v in self.headers.items()}, f)
                with open(base + ".body.tmp", "wb") as f:
                    f.write(body)
                os.rename(base + ".headers.tmp", base + ".headers")
                os.rename(base + ".body.tmp", base + ".body")
        else:
            with LOCK:
                with open(os.path.join(DIR, "refused.log"), "a") as f:
                    f.write("%d\n" % status)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
with open(os.path.join(DIR, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
server.serve_forever()
