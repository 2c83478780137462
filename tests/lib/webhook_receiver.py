"""A stand-in webhook receiver for tests: accepts POSTs on any path and appends one JSON
line per request to OUT: path, Idempotency-Key, Content-Type, whether Sluice-Signature
verifies under SECRET (HMAC-SHA256 of "<t>.<body>"), and the body as parsed JSON.
Listens on a free loopback port, which it writes to PORTFILE once it is ready.

    python3 tests/lib/webhook_receiver.py OUT PORTFILE SECRET
"""
import hashlib
import hmac
import http.server
import json
import os
import sys
import threading

OUT, PORTFILE, SECRET = sys.argv[1], sys.argv[2], sys.argv[3].encode()
LOCK = threading.Lock()


def signed(header, body):
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts:
        return False
    want = hmac.new(SECRET, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, parts["v1"])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        line = {
            "path": self.path,
            "idempotency_key": self.headers.get("Idempotency-Key", ""),
            "content_type": self.headers.get("Content-Type", ""),
            "signature_ok": signed(self.headers.get("Sluice-Signature", ""), body),
            "body": doc,
        }
        with LOCK, open(OUT, "a") as f:
            f.write(json.dumps(line) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)  # the port file appears complete
server.serve_forever()
