"""A real webhook receiver for the tests: pytest-httpserver on 127.0.0.1, threaded.

Its handler verifies every request it gets with the `standardwebhooks` package's own
`Webhook(secret).verify`, with each secret the test says the receiver holds (both during a
rotation); a request that fails to verify fails the test. Faults are asked for per test:
a status (500, 410, 429 with Retry-After), a redirect, a stall past the client's timeout.
"Refused" is a closed port (`REFUSED_URL`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook
from werkzeug import Request, Response

from tenants.tests.builders import staff_user

CLOSED_PORT = 9  # closed on loopback, as in the root conftest

REFUSED_URL = f"http://127.0.0.1:{CLOSED_PORT}/hook"
HOOK_PATH = "/hook"


@dataclass
class Received:
    headers: dict[str, str]
    body: str
    payload: dict
    path: str

    @property
    def msg_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Fault:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "ok"
    stall_seconds: float = 0.0


class Receiver:
    """What the receiver got, verified; and what it answers next."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.secrets: list[str] = []
        self.received: list[Received] = []
        self.elsewhere: list[str] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.server.url_for(HOOK_PATH)

    def answer(self, status: int = 200, *, times: int = 1, **kwargs) -> Receiver:
        """Answer the next `times` requests so (status, headers, body, stall_seconds)."""
        with self._lock:
            self._faults += [Fault(status=status, **kwargs) for _ in range(times)]
        return self

    def redirect(self, *, times: int = 1) -> Receiver:
        """Answer 302 to another path of this server, which records what reaches it."""
        return self.answer(
            302, times=times, headers={"Location": self.server.url_for("/elsewhere")}
        )

    def stall(self, seconds: float, *, times: int = 1) -> Receiver:
        return self.answer(200, times=times, stall_seconds=seconds)

    def handle(self, request: Request) -> Response:
        body = request.get_data(as_text=True)
        headers = dict(request.headers)
        assert self.secrets, "the test did not give the receiver its secret"
        for secret in self.secrets:
            # Raises WebhookVerificationError (failing the test) unless this secret signed it.
            Webhook(secret).verify(body, headers)
        received = Received(
            headers={k.lower(): v for k, v in headers.items()},
            body=body,
            payload=json.loads(body),
            path=request.path,
        )
        with self._lock:
            self.received.append(received)
            fault = self._faults.pop(0) if self._faults else Fault()
        if fault.stall_seconds:
            time.sleep(fault.stall_seconds)
        return Response(fault.body, status=fault.status, headers=fault.headers)

    def handle_elsewhere(self, request: Request) -> Response:
        with self._lock:
            self.elsewhere.append(request.get_data(as_text=True))
        return Response("redirect target", status=200)


@pytest.fixture(scope="session")
def _webhook_server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def webhook_receiver(_webhook_server, settings) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 for this test, allowed by WEBHOOK_ALLOW_HOSTS, with a 1 s
    timeout, no jitter, and a failure from any request that did not verify."""
    settings.WEBHOOK_ALLOW_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.0
    settings.WEBHOOK_RETRY_JITTER = 0
    _webhook_server.clear()
    receiver = Receiver(_webhook_server)
    _webhook_server.expect_request(HOOK_PATH, method="POST").respond_with_handler(receiver.handle)
    _webhook_server.expect_request("/elsewhere").respond_with_handler(receiver.handle_elsewhere)
    yield receiver
    _webhook_server.check()


@pytest.fixture(autouse=True)
def _webhook_defaults(settings) -> None:
    """Webhooks without the receiver reach nothing but 127.0.0.1's closed ports."""
    settings.WEBHOOK_ALLOW_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.0
    settings.WEBHOOK_RETRY_JITTER = 0


@pytest.fixture
def staff():
    """olga, a staff user with an email address (endpoint owners are told by email)."""
    return staff_user("olga", email="olga@agency.test", password="pw-olga-1234")
