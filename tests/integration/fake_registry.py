# fake_registry.py ROUTES.json PORTFILE: a registry that lies, for testing the
# client's own checks. Serves the files named in a route table
# ({"/v2/...": {"file": F, "status": N, "headers": {...}}}) on a free loopback
# port, written to PORTFILE; anything else is 404 NAME_UNKNOWN. A route keyed
# "METHOD /path" (e.g. "POST /api/v1/...") answers that method only and wins
# over a plain "/path" route; request bodies are read and ignored.
import http.server, json, sys
routes = json.load(open(sys.argv[1]))
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, body):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        path = self.path.split("?")[0]
        r = routes.get(self.command + " " + path, routes.get(path))
        if r is None:
            data = b'{"errors":[{"code":"NAME_UNKNOWN","message":"no such thing"}]}'
            status, headers = 404, {"Content-Type": "application/json"}
        else:
            data = open(r["file"], "rb").read()
            status, headers = r.get("status", 200), r.get("headers", {})
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)
    def do_GET(self): self.answer(True)
    def do_HEAD(self): self.answer(False)
    def do_POST(self): self.answer(True)
    def do_PUT(self): self.answer(True)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[2], "w").write(str(s.server_address[1]))
s.serve_forever()
