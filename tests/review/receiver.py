"""A webhook receiver on loopback that records every POST body."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET_PATH = "/services/T000/B000/very-secret-token"


class Receiver:
    def __init__(self) -> None:
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def configure(self, data_dir) -> None:
        (data_dir / "notify.yaml").write_text(
            # the receiver listens on loopback, which webhooks refuse unless allowed
            f"allow_private: true\nwebhooks:\n  reliability:\n    url: {self.url}\n"
            "    timeout_s: 2\n    retries: 0\n"
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
