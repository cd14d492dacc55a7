"""Fixtures shared by every app's tests.

Wix is never mocked: `wix_sandbox` serves a fresh `wixapi.sandbox.Sandbox` over real HTTP
on 127.0.0.1 for the test, and points `settings.WIX_API_BASE_URL` at it. Tests that do not
ask for it get a base URL on a closed port, so no test can ever reach the real Wix.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from portal.celery import app as celery_app
from wixapi.client import default_token_cache
from wixapi.sandbox import Sandbox, serve

# Port 9 (discard) is closed on loopback: a call that slips through fails fast.
UNREACHABLE_WIX = "http://127.0.0.1:9"


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
