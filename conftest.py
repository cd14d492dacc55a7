"""Fixtures shared by every app's tests.

Wix is never mocked: `wix_sandbox` serves a fresh `wixapi.sandbox.Sandbox` over real HTTP
on 127.0.0.1 for the test, and points `settings.WIX_API_BASE_URL` at it. Tests that do not
ask for it get a base URL on a closed port, so no test can ever reach the real Wix.
"""

from __future__ import annotations

import email
import email.policy
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from portal.celery import app as celery_app
from wixapi.client import default_token_cache
from wixapi.sandbox import Sandbox, serve

# Port 9 (discard) is closed on loopback: a call that slips through fails fast.
UNREACHABLE_WIX = "http://127.0.0.1:9"
CLOSED_PORT = 9


@pytest.fixture(autouse=True)
def _plain_static_files(settings, tmp_path_factory) -> None:
    """Admin pages render without `collectstatic`: tests do not build the manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.STATIC_ROOT = tmp_path_factory.getbasetemp() / "static"
    settings.STATIC_ROOT.mkdir(exist_ok=True)


@pytest.fixture(autouse=True)
def _wix_settings(settings) -> Iterator[None]:
    """Fast retries and no real Wix; tokens from another test's sandbox are forgotten."""
    settings.WIX_API_BASE_URL = UNREACHABLE_WIX
    settings.WIX_TIMEOUT_SECONDS = 2.0
    settings.WIX_CONNECT_TIMEOUT_SECONDS = 1.0
    settings.WIX_MAX_RETRIES = 2
    settings.WIX_BACKOFF_SECONDS = 0.01
    settings.WIX_RETRY_AFTER_MAX_SECONDS = 1
    # Every client keeps a request budget, too large to slow the suite (test_ratelimit.py
    # tests it small).
    settings.WIX_SITE_REQUESTS_PER_MINUTE = 60_000
    default_token_cache.clear()
    yield
    default_token_cache.clear()


@pytest.fixture(autouse=True)
def _own_cache(settings) -> None:
    """Each test gets an empty cache: locks and request budgets start free.

    A fresh key prefix instead of a flush, so parallel runs can share one Redis.
    """
    settings.CACHES = {
        alias: {**config, "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
        for alias, config in settings.CACHES.items()
    }


@pytest.fixture(autouse=True)
def _celery_in_process(request) -> Iterator[None]:
    """Tasks run in-process, as without a broker, even when CELERY_BROKER_URL is set.

    Tests marked `worker` start a real worker and publish to the broker instead.
    """
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = request.node.get_closest_marker("worker") is None
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def wix_sandbox(settings) -> Iterator[Sandbox]:
    """A fresh, empty sandbox served for this test; the portal's Wix base URL points at it."""
    sandbox = Sandbox()
    server = serve(sandbox, host="127.0.0.1", port=0)
    sandbox.url = server.url
    settings.WIX_API_BASE_URL = server.url
    try:
        yield sandbox
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _no_mail_by_accident(settings) -> None:
    """Mail goes over SMTP to a closed port unless a test asks for `smtp_server`.

    Django's test set-up switches to the locmem backend, which would hide what a real
    server refuses; a test that sends mail without a server fails loudly instead.
    """
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", CLOSED_PORT
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5


class SmtpServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1: what it received, parsed."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._arrived:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self._arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[email.message.EmailMessage]:
        """The messages, once `count` have arrived; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.messages)} of {count} emails arrived")
                self._arrived.wait(left)
            return list(self.messages)


class _BoundController(Controller):
    """aiosmtpd serving a socket bound beforehand: its own port 0 cannot be asked for."""

    def __init__(self, handler, sock: socket.socket) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=sock.getsockname()[1])
        self._sock = sock

    def _create_server(self):
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


@pytest.fixture
def smtp_server(settings) -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 for this test; the portal's mail goes to it."""
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = SmtpServer()
    controller = _BoundController(server, sock)
    controller.start()
    settings.EMAIL_PORT = controller.port
    try:
        yield server
    finally:
        controller.stop()
