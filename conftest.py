"""Fixtures shared by every app's tests.

Wix is never mocked: `wix_sandbox` serves a fresh `wixapi.sandbox.Sandbox` over real HTTP
on 127.0.0.1 for the test, and points `settings.WIX_API_BASE_URL` at it. Tests that do not
ask for it get a base URL on a closed port, so no test can ever reach the real Wix.

Real servers on 127.0.0.1 on request: `smtp_server` (mail), `redis_server` (a throwaway Redis),
`worker_processes` (`celery worker` processes on that Redis and the test's PostgreSQL).
`world` and `busy_world` are the API's two tenants and their users; they are built by
`connections.tests.builders`, and users and clients by `tenants.tests.builders`.
"""

from __future__ import annotations

import email
import email.policy
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from aiosmtpd.controller import Controller
from django.db import connection

from connections.tests.builders import ApiWorld, api_world, connect_body
from portal.celery import app as celery_app
from tenants.tests.builders import api_client_for
from wixapi.client import default_token_cache
from wixapi.sandbox import Sandbox, serve

# Port 9 (discard) is closed on loopback: a call that slips through fails fast.
UNREACHABLE_WIX = "http://127.0.0.1:9"
CLOSED_PORT = 9
ROOT = Path(__file__).resolve().parent


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


class RedisServer:
    """A throwaway redis-server on a free port, without persistence, that can be stopped."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 (redis-server, fixed arguments)
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A throwaway redis-server for this test, started; the test is skipped without one."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server is not on PATH (apt-get install redis-server)")
    server = RedisServer(executable)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# A worker whose broker hands unacknowledged messages out again after a few seconds, and
# looks for them every second (kombu's default: every 100 s).
WORKER = """
from portal.celery import app
app.conf.broker_transport_options = {{
    "visibility_timeout": {visibility_timeout},
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}}
app.worker_main(["worker", "--pool=solo", "-Q", "{queue}", "--loglevel={loglevel}",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"])
"""


@pytest.fixture
def worker_processes(redis_server, settings, tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start real `celery worker` processes (one queue, solo pool) on `redis_server` (broker
    on db 0, cache on db 1) and the test's PostgreSQL database, with `env` added to theirs:
    `start(queue, env={...}, loglevel="WARNING", visibility_timeout=3)`. Each logs to its
    `process.log_path`; the test's end kills those still running."""
    db = connection.settings_dict
    environment = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_server.port}/0",
        "CACHE_URL": f"rediscache://127.0.0.1:{redis_server.port}/1",
        "SECRET_KEY": settings.SECRET_KEY,
        "PORTAL_ENCRYPTION_KEYS": ",".join(settings.PORTAL_ENCRYPTION_KEYS),
        "CONN_MAX_AGE": "0",
    }
    started: list[subprocess.Popen] = []

    def start(
        queue: str, *, env: dict[str, str], loglevel: str = "WARNING", visibility_timeout: int = 3
    ) -> subprocess.Popen:
        script = WORKER.format(
            queue=queue, loglevel=loglevel, visibility_timeout=visibility_timeout
        )
        log_path = tmp_path / f"worker-{len(started)}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(  # noqa: S603 (our own interpreter)
                [sys.executable, "-c", script],
                cwd=ROOT,
                env={**environment, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process.log_path = log_path
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture
def world(wix_sandbox) -> ApiWorld:
    """The API's world (`connections.tests.builders.api_world`): tenants A and B on the
    sandbox, refreshed; olga operates A, victor views A, root is a superuser."""
    return api_world(wix_sandbox)


@pytest.fixture
def busy_world(world, wix_sandbox, django_capture_on_commit_callbacks) -> ApiWorld:
    """`world` after some use: each tenant has a connect request of root's (Google, its
    first schedule) and a finished refresh job with its audit events; the sandbox's
    request log starts empty."""
    root = api_client_for(world.superuser)
    for tenant in (world.tenant_a, world.tenant_b):
        assert root.post("/api/v1/connect/oauth/", connect_body(tenant)).status_code == 201
        with django_capture_on_commit_callbacks(execute=True):
            assert root.post(f"/api/v1/tenants/{tenant.pk}/refresh/").status_code == 202
    wix_sandbox.reset_requests()
    return world
