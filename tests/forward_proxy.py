"""A tiny outbound HTTP proxy on 127.0.0.1, for the tests that ``HTTP_PROXY`` is honoured.

It does what a corporate forward proxy does with a plain-HTTP URL: it reads the request in
absolute form (``POST http://127.0.0.1:<port>/api/... HTTP/1.1``), sends it on to that host and
returns the answer, keeping the connection alive. It forwards only to loopback: nothing leaves
the machine. What it forwarded is kept (method, host, path without the token's tail) for the
assertions.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from waiting import FAILSAFE

from discord_logging.redaction import redact

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class ForwardProxy(ThreadingHTTPServer):
    """Forwards absolute-form requests to loopback servers; ``forwarded`` lists them."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Forwarder)
        self.forwarded: list[tuple[str, str, str]] = []  # (method, host:port, redacted path)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.01})
        self._thread.daemon = True

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the value for ``HTTP_PROXY``."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self, method: str, host: str, path: str) -> None:
        with self._lock:
            self.forwarded.append((method, host, redact(path)))

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(FAILSAFE)


class _Forwarder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ForwardProxy

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request line holds a webhook token."""

    def _forward(self) -> None:
        target = urlsplit(self.path)
        if target.scheme != "http" or target.hostname not in LOOPBACK:
            self.send_error(403, "this test proxy forwards only to loopback")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        path = target.path + (f"?{target.query}" if target.query else "")
        self.server.record(self.command, target.netloc, path)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
        try:
            upstream.request(self.command, path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("connection", "content-length", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _forward
