"""A local webhook receiver, for the demo: it checks every request's signature with the
Standard Webhooks library, as a client's receiver would, and answers what it found.

Its answer is what the portal keeps as the delivery's response, so the admin's delivery page
reads "Verified webhook.test msg_…". Not for production: it keeps nothing and trusts its
one process.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

logger = logging.getLogger(__name__)


class LocalReceiver:
    """Serves POST / on 127.0.0.1 in a daemon thread; `secrets` are those it verifies with."""

    def __init__(self, *, port: int = 0) -> None:
        self.secrets: list[str] = []
        self.verified: list[tuple[str, str]] = []  # (event type, webhook-id)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status, text = receiver.receive(body.decode("utf-8", "replace"), self.headers)
                answer = text.encode()
                self.send_response(status)
                self.send_header("content-type", "text/plain; charset=utf-8")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format, *args):  # one line per delivery is enough
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> LocalReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def receive(self, body: str, headers) -> tuple[int, str]:
        """Verify one request; answer 200 naming the event, or 400 saying why not."""
        plain = {name.lower(): value for name, value in headers.items()}
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, plain)
            except WebhookVerificationError:
                continue
            event_type = json.loads(body).get("type", "?")
            self.verified.append((event_type, plain.get("webhook-id", "")))
            logger.info("Local receiver: verified %s %s", event_type, plain.get("webhook-id"))
            return 200, f"Verified {event_type} {plain.get('webhook-id', '')}"
        logger.warning("Local receiver: a request whose signature did not verify")
        return 400, "Signature did not verify"
