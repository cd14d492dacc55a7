"""Fixtures shared by every app's tests.

Wix is never mocked: `wix_sandbox` serves a fresh `wixapi.sandbox.Sandbox` over real HTTP
on 127.0.0.1 for the test, and points `settings.WIX_API_BASE_URL` at it. Tests that do not
ask for it get a base URL on a closed port, so no test can ever reach the real Wix.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
    default_token_cache.clear()
    yield
    default_token_cache.clear()


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
