"""Fixtures of the portal's tests: `olga` (logs in with a password) and `demo` (the demo
sites mirrored into their tenants); and the browser tests' set-up.

Browser tests: Playwright drives Debian's chromium (/usr/bin/chromium), no downloaded browser.

Chromium runs headless with the flags this machine needs (no sandbox as root, no GPU, and no
background networking, which the closed network would refuse). Tests marked `browser` are
skipped when the binary is missing: `apt-get install -y chromium`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connections.models import RefreshOutcome
from connections.services.refresh import tenant_refresh
from portal.demo import install_demo_tenants
from portal.tests.builders import PASSWORD
from tenants.models import Via
from tenants.services.tenants import tenant_verify_credentials
from tenants.tests.builders import staff_user
from wixapi.sandbox import seed_demo

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Playwright's sync API runs an event loop in the test's thread; the ORM calls the tests
# make around it are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: apt-get install -y chromium")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's launch options, pointed at Debian's chromium."""
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "headless": True,
        "args": CHROMIUM_FLAGS,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1400, "height": 900}}


@pytest.fixture
def olga():
    """olga, a staff user who logs in with `builders.PASSWORD`."""
    return staff_user("olga", password=PASSWORD)


@pytest.fixture
def demo(wix_sandbox):
    """The demo sites in the sandbox, mirrored into their tenants; return the tenants by name."""
    tenants = install_demo_tenants(seed_demo(wix_sandbox))
    for tenant in tenants:
        tenant_verify_credentials(tenant, user=None, via=Via.COMMAND)
        run = tenant_refresh(tenant)
        assert run.outcome == RefreshOutcome.OK, (tenant.name, run.error_code, run.error_message)
    return {tenant.name: tenant for tenant in tenants}
