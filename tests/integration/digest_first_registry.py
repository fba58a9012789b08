# digest_first_registry.py LOG PORTFILE: a registry that wants each blob's
# digest before its bytes, as mlreg's s3 backend does: it answers a new
# upload session (POST .../blobs/uploads/ without ?digest=) with the header
# `Mlreg-Digest-First: true`, takes the whole body in the closing
# PUT ?digest= (checked against the digest), and refuses PATCH (500).
# Monolithic POST ?digest= works too. Blobs are kept in memory; each
# request is logged to LOG as "METHOD PATH BODYBYTES", so a test sees the
# order of the client's requests and what it sent.
import hashlib, http.server, itertools, sys, urllib.parse

log = open(sys.argv[1], "a", buffering=1)
blobs = set()
sessions = set()
numbers = itertools.count()


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        h, got = hashlib.sha256(), 0
        while got < n:
            chunk = self.rfile.read(min(1 << 20, n - got))
            if not chunk:
                break
            h.update(chunk)
            got += len(chunk)
        u = urllib.parse.urlparse(self.path)
        log.write("%s %s %d\n" % (self.command, u.path, got))
        return "sha256:" + h.hexdigest(), got

    def query_digest(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        return q.get("digest", [""])[0]

    def do_GET(self):
        self.body()
        self.reply(404)

    def do_HEAD(self):
        self.body()
        d = urllib.parse.urlparse(self.path).path.rsplit("/", 1)[-1]
        self.reply(200 if d in blobs else 404)

    def do_DELETE(self):
        self.body()
        sessions.discard(urllib.parse.urlparse(self.path).path)
        self.reply(204)

    def do_PATCH(self):
        self.body()
        self.reply(500)

    def do_POST(self):
        d, n = self.body()
        want = self.query_digest()
        if not want:
            u = "/v2/df/m/blobs/uploads/s%d" % next(numbers)
            sessions.add(u)
            self.reply(202, {"Location": u, "Range": "0-0", "Mlreg-Digest-First": "true"})
            return
        if d != want:
            self.reply(400)
            return
        blobs.add(d)
        self.reply(201, {"Docker-Content-Digest": d})

    def do_PUT(self):
        d, n = self.body()
        u = urllib.parse.urlparse(self.path)
        if u.path in sessions:
            sessions.discard(u.path)
            if d != self.query_digest():
                self.reply(400)
                return
            blobs.add(d)
            self.reply(201, {"Docker-Content-Digest": d})
            return
        self.reply(201, {"Docker-Content-Digest": d})  # a manifest


s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[2], "w").write(str(s.server_address[1]))
s.serve_forever()
