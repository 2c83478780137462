"""A stand-in OpenTelemetry collector for tests: accepts OTLP/HTTP JSON on POST /v1/traces
and appends each request body, as one line, to OUT. Listens on a free loopback port,
which it writes to PORTFILE once it is ready.

    python3 tests/lib/otlp_receiver.py OUT PORTFILE
"""
import http.server
import sys
import threading

OUT, PORTFILE = sys.argv[1], sys.argv[2]
LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/json":
            self.send_response(404)
            self.end_headers()
            return
        with LOCK, open(OUT, "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os  # noqa: E402  (the rename makes the port file appear complete)

os.rename(PORTFILE + ".tmp", PORTFILE)
server.serve_forever()
