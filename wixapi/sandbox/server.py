"""Serve a `Sandbox` over real HTTP/1.1 from a background thread.

A small WSGI server on the standard library's `ThreadingHTTPServer`: one thread per client
connection, and connections kept alive between calls as Wix keeps them (Werkzeug's
development server closes every connection after one response, so a fleet refresh paid a
TCP handshake and a new server thread per Wix call). Every response carries its
Content-Length, so a client can send its next request on the same connection.
"""

from __future__ import annotations

import contextlib
import io
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from .app import SandboxApp
from .state import Sandbox

# serve_forever checks for shutdown this often; a short poll keeps per-test stop() fast.
POLL_INTERVAL_SECONDS = 0.02
# An idle keep-alive connection is closed after this, so its thread does not linger.
IDLE_TIMEOUT_SECONDS = 30
# Connections waiting to be accepted: a fleet benchmark opens dozens at once.
LISTEN_BACKLOG = 128
# Response headers the server sets itself (hop-by-hop, or recomputed from the body).
_SERVER_HEADERS = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive"})
_NO_BODY_STATUSES = frozenset({204, 304})
# A request may send this many header lines at most (as http.client allows).
MAX_HEADERS = 100


class _Headers:
    """A request's header lines: `get` by any case, and `items` in the order sent.

    What the handler needs of `email.message.Message`, which http.server builds with the
    email package's parser: that was a third of the sandbox's CPU per call.
    """

    def __init__(self) -> None:
        self._items: list[tuple[str, str]] = []
        self._first: dict[str, str] = {}

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))
        self._first.setdefault(name.lower(), value)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._first.get(name.lower(), default)

    def items(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)


_date = threading.local()


def _http_date() -> str:
    """The Date header's value, formatted once per second (per thread)."""
    second = int(time.time())
    if getattr(_date, "second", None) != second:
        _date.second, _date.value = second, formatdate(second, usegmt=True)
    return _date.value


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], app: SandboxApp, *, quiet: bool) -> None:
        self.app = app
        self.quiet = quiet
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address) -> None:
        # A client that hung up (a timed-out stall, a closed pool) is not a server error.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    def close_open_connections(self) -> None:
        """Wake every connection thread (idle in a read or not) by shutting its socket."""
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Runs the WSGI app for each request of a kept-alive HTTP/1.1 connection."""

    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "WixSandbox/1"
    timeout = IDLE_TIMEOUT_SECONDS
    # Status line, headers and body leave in one write; no wait for the peer's delayed ACK.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        with self.server.sockets_lock:
            self.server.open_sockets.discard(self.connection)
        # The client may be gone, with nothing left to flush to.
        with contextlib.suppress(OSError):
            super().finish()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def parse_request(self) -> bool:
        """Read the request line and headers of an HTTP/1.x request (not 0.9)."""
        self.command, self.request_version = None, "HTTP/1.0"  # for send_error
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request line {self.requestline!r}")
            return False
        self.command, self.path, self.request_version = words
        headers = _Headers()
        for _ in range(MAX_HEADERS + 1):
            line = self.rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            name, colon, value = str(line, "iso-8859-1").partition(":")
            if not colon:
                self.send_error(HTTPStatus.BAD_REQUEST, "Bad header line")
                return False
            headers.add(name.strip(), value.strip())
        else:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
            return False
        self.headers = headers  # type: ignore[assignment]
        connection = (headers.get("Connection") or "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive"
        )
        if (headers.get("Expect") or "").lower() == "100-continue":
            return self.handle_expect_100()
        return True

    def run_app(self) -> None:
        body = self._read_body()
        if body is None:
            return
        environ = self._environ(body)
        response: dict[str, object] = {}
        chunks: list[bytes] = []

        def start_response(status, headers, exc_info=None):
            if exc_info and response:
                raise exc_info[1].with_traceback(exc_info[2])
            response["status"], response["headers"] = status, headers
            return chunks.append

        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except Exception:
            traceback.print_exc()
            response = {"status": "500 Internal Server Error", "headers": []}
            chunks = [b"Internal Server Error"]
        self._respond(str(response["status"]), response["headers"], b"".join(chunks))

    # http.server dispatches on the method name; the app routes (and refuses) methods itself.
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = run_app

    def _read_body(self) -> bytes | None:
        """The whole request body (so the next request starts where this one ends)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "Bad Content-Length")
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _environ(self, body: bytes) -> dict:
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
            "CONTENT_LENGTH": str(len(body)) if body else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_LENGTH" or key == "TRANSFER_ENCODING":
                continue
            if key != "CONTENT_TYPE":
                key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _respond(self, status: str, headers, body: bytes) -> None:
        code = int(status.split(" ", 1)[0])
        if self.command == "HEAD" or code in _NO_BODY_STATUSES or code < 200:
            length, body = len(body), b""
        else:
            length = len(body)
        lines = [f"{self.protocol_version} {status}", f"Server: {self.version_string()}"]
        lines.append(f"Date: {_http_date()}")
        lines.extend(f"{k}: {v}" for k, v in headers if k.lower() not in _SERVER_HEADERS)
        if code not in _NO_BODY_STATUSES and code >= 200:
            lines.append(f"Content-Length: {length}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + body)
        except OSError:
            self.close_connection = True  # the client hung up (e.g. it timed out a stall)
            return
        self.log_request(code, length)

    def log_message(self, format: str, *args) -> None:
        if not self.server.quiet:
            super().log_message(format, *args)


class SandboxServer:
    """A running sandbox server: `url`, `host`, `port`, `stop()`; usable as a context manager."""

    def __init__(self, sandbox: Sandbox, host: str, port: int, *, quiet: bool) -> None:
        self.sandbox = sandbox
        self._server = _Server((host, port), SandboxApp(sandbox), quiet=quiet)
        self.host = host
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_SECONDS},
            name=f"wix-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.close_open_connections()
        self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(
    sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True
) -> SandboxServer:
    """Start serving `sandbox` in a daemon thread and return the server (port 0: any free)."""
    server = SandboxServer(sandbox, host, port, quiet=quiet)
    if sandbox.url is None:
        sandbox.url = server.url
    return server
