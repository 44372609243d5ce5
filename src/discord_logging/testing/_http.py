"""The stdlib HTTP plumbing of the fake: a threading server that can be stopped at any moment."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from discord_logging.testing._validation import REQUEST_BYTES

LOOPBACK_NAME = "localhost"
IPV6_LOOPBACK = "::1"

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from email.message import Message

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Incoming:
    """A request as read off the socket."""

    method: str
    target: str
    headers: Message
    body: bytes
    too_large: bool


@dataclass
class Outgoing:
    """A response to write; ``body`` is omitted for 204."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # Called after the status line and headers went out, instead of sending the body: it
    # blocks for as long as the answer stalls, then the connection is dropped.
    stall: Callable[[], None] | None = None
    # Sent as the body instead of ``body``, piece by piece, until it ends or the client hangs
    # up; without a Content-Length (the connection's close ends it) unless ``length`` is set.
    pieces: Iterable[bytes] | None = None
    length: int | None = None


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections so ``close()`` can end them all."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self, app: Callable[[Incoming], Outgoing | None], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        # `app` answers each request; None means: drop the connection unanswered. `host` is a
        # loopback address: 127.0.0.1, or ::1 as the second listener of a name (localhost).
        self.app = app
        self._conn_lock = threading.Lock()
        self._conns: dict[threading.Thread, socket.socket] = {}
        self._loop: threading.Thread | None = None
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can take
        # seconds on some machines; the fake is always 127.0.0.1, so skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def start(self) -> None:
        self._loop = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True,
            name=f"FakeDiscord:{self.server_port}",
        )  # fmt: skip
        self._loop.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            daemon=True,
            name=f"FakeDiscord:{self.server_port}:conn",
        )
        with self._conn_lock:
            self._conns[thread] = request
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._conns.pop(threading.current_thread(), None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up (timeouts, closed pools) and stop() cutting connections are
        # normal in tests; only report real bugs of the fake.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        super().handle_error(request, client_address)

    def close(self, timeout: float = 2.0) -> None:
        """Stop accepting, cut every open connection, and wait (bounded) for handlers."""
        if self._loop is not None:
            self.shutdown()
            self._loop.join(timeout)
        self.server_close()
        with self._conn_lock:
            conns = list(self._conns.items())
        for _, sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread, _ in conns:
            thread.join(max(0.0, deadline - time.monotonic()))


class Handler(BaseHTTPRequestHandler):
    """Reads a request, asks the app, writes the answer; HTTP/1.1 keep-alive like Discord."""

    protocol_version = "HTTP/1.1"
    # Discord's answers come through Cloudflare, which names itself in `Server`.
    server_version = "cloudflare"
    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK would add
    # ~40 ms to every answer that has a body.
    disable_nagle_algorithm = True
    server: Server

    def version_string(self) -> str:
        """The ``Server`` header: just ``cloudflare``, no Python version."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr lines of BaseHTTPRequestHandler."""

    def _dispatch(self) -> None:
        body, too_large = self._read_body()
        request = Incoming(self.command, self.path, self.headers, body, too_large)
        response = self.server.app(request)
        if response is None:
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.pieces is not None:
            self._send_pieces(response)
            return
        if response.status != 204:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.stall is not None:
            self.wfile.flush()
            response.stall()
            self.close_connection = True
            return
        if response.status != 204 and self.command != "HEAD":
            self.wfile.write(response.body)
        self.wfile.flush()

    def _send_pieces(self, response: Outgoing) -> None:
        """A body of any size, or an endless one: written until it ends or the client goes."""
        assert response.pieces is not None
        if response.length is not None:
            self.send_header("Content-Length", str(response.length))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for piece in response.pieces:
            self.wfile.write(piece)  # an OSError (the client hung up) ends the connection
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def _read_body(self) -> tuple[bytes, bool]:
        """The whole body; bodies over Discord's request cap are drained and flagged, not kept."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = max(0, int(self.headers.get("Content-Length") or 0))
        except ValueError:
            length = 0
        parts: list[bytes] = []
        too_large = length > REQUEST_BYTES
        while length > 0:
            chunk = self.rfile.read(min(_CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            if not too_large:
                parts.append(chunk)
        return b"".join(parts), too_large

    def _read_chunked(self) -> tuple[bytes, bool]:
        parts: list[bytes] = []
        size_total = 0
        while True:
            line = self.rfile.readline(_CHUNK)
            if not line:
                break
            try:
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            except ValueError:
                break
            if size == 0:
                # Trailers, if any, end with an empty line.
                while self.rfile.readline(_CHUNK).strip():
                    pass
                break
            chunk = self.rfile.read(size)
            self.rfile.readline(_CHUNK)
            size_total += len(chunk)
            if size_total <= REQUEST_BYTES:
                parts.append(chunk)
        too_large = size_total > REQUEST_BYTES
        return (b"" if too_large else b"".join(parts)), too_large


def ipv6_listener(app: Callable[[Incoming], Outgoing | None], port: int) -> Server | None:
    """A second listener on ::1 (same port) when ``localhost`` resolves there too, so a
    client trying ::1 first is answered; never any address beyond loopback."""
    try:
        infos = socket.getaddrinfo(LOOPBACK_NAME, port, socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return None
    if not any(info[4][0] == IPV6_LOOPBACK for info in infos):
        return None
    with contextlib.suppress(OSError):  # port taken on ::1: clients fall back to IPv4
        return Server(app, host=IPV6_LOOPBACK, port=port)
    return None
