"""Serve a `Sandbox` over real HTTP from a background thread (Werkzeug's threaded server)."""

from __future__ import annotations

import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from .app import SandboxApp
from .state import Sandbox

# serve_forever checks for shutdown this often; a short poll keeps per-test stop() fast.
POLL_INTERVAL_SECONDS = 0.02


class _Handler(WSGIRequestHandler):
    # HTTP/1.1 keeps client connections alive between calls (fleet benchmarks).
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections close after this, so their threads don't outlive a test.
    timeout = 30

    def log_request(self, code="-", size="-") -> None:
        pass  # one line per call would drown test and benchmark output


class _LoudHandler(_Handler):
    log_request = WSGIRequestHandler.log_request


class SandboxServer:
    """A running sandbox server: `url`, `host`, `port`, `stop()`; usable as a context manager."""

    def __init__(self, sandbox: Sandbox, host: str, port: int, *, quiet: bool) -> None:
        self.sandbox = sandbox
        handler = _Handler if quiet else _LoudHandler
        self._server = make_server(
            host, port, SandboxApp(sandbox), threaded=True, request_handler=handler
        )
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
