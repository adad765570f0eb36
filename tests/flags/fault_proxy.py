"""A loopback HTTP proxy in front of a real server that can misbehave on demand: answer
writes with a status code, or hold them longer than a client's timeout. Faults apply to
writes only (POST, PUT, PATCH, DELETE) unless `all_methods` is set."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class Fault:
    status: int | None = None  # answer with this status instead of forwarding
    delay_s: float = 0.0  # wait this long first
    forward_after_delay: bool = False  # after the delay, still pass the call on
    all_methods: bool = False
    # Answer with this body (and status, default 200) instead; with forward_after_delay the
    # call still reaches the server first, so the write is applied but the answer is junk.
    body: bytes | None = None
    content_type: str = "application/json"


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.fault: Fault | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fault = proxy.fault
                if fault and (fault.all_methods or self.command in WRITES):
                    time.sleep(fault.delay_s)
                    if fault.body is not None:
                        if fault.forward_after_delay:
                            self._forward(body)
                        self._reply(fault.status or 200, fault.body, fault.content_type)
                        return
                    if fault.status is not None or not fault.forward_after_delay:
                        self._reply(fault.status or 504, b'{"message": "injected fault"}')
                        return
                up = self._forward(body)
                self._reply(up.status_code, up.content)

            def _forward(self, body: bytes) -> requests.Response:
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                return requests.request(
                    self.command, proxy.upstream + self.path, data=body, headers=headers, timeout=30
                )

            def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): nothing to answer

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
