# slow_registry.py DELAY PORTFILE: a registry that takes DELAY seconds to
# answer a blob upload once it has read the whole body, as a registry
# storing a large blob in an object store does; for the CLI's stall watch.
# Serves just what `mlreg push` of new files needs: GET manifest and HEAD
# blob are 404, POST .../blobs/uploads/?digest=D reads the body, waits
# (bodies of 1 MiB or more) and answers 201 with D, PUT manifest answers 201
# with the body's digest. A session (POST without ?digest=, PATCHes, PUT
# ?digest=D) waits in its closing PUT when it holds 1 MiB or more.
import hashlib, http.server, sys, time, urllib.parse
delay = float(sys.argv[1])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, status, headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        data = b""
        while len(data) < n:
            chunk = self.rfile.read(min(1 << 20, n - len(data)))
            if not chunk:
                break
            data += chunk
        return data
    def do_GET(self): self.reply(404)
    def do_HEAD(self): self.reply(404)
    sessions = {}
    def do_PATCH(self):
        u = urllib.parse.urlparse(self.path).path
        H.sessions[u] = H.sessions.get(u, 0) + len(self.body())
        self.reply(202, {"Location": u, "Range": "0-%d" % (H.sessions[u] - 1)})
    def do_POST(self):
        if "digest=" not in self.path:
            u = "/v2/slow/m/blobs/uploads/u%d" % len(H.sessions)
            H.sessions[u] = 0
            self.reply(202, {"Location": u, "Range": "0-0"})
            return
        if len(self.body()) >= 1 << 20:
            time.sleep(delay)
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        self.reply(201, {"Docker-Content-Digest": q.get("digest", [""])[0]})
    def do_PUT(self):
        u = urllib.parse.urlparse(self.path)
        if u.path in H.sessions:
            self.body()
            if H.sessions[u.path] >= 1 << 20:
                time.sleep(delay)
            d = urllib.parse.parse_qs(u.query).get("digest", [""])[0]
            self.reply(201, {"Docker-Content-Digest": d})
            return
        d = "sha256:" + hashlib.sha256(self.body()).hexdigest()
        self.reply(201, {"Docker-Content-Digest": d})
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[2], "w").write(str(s.server_address[1]))
s.serve_forever()
