"""The per-site request budget: shared through the cache, per site, waits then gives up."""

from __future__ import annotations

import math
import time

import pytest

from connections.services.refresh import tenant_refresh
from tenants.ratelimit import BudgetExhausted, SiteBudget, budget_for
from tenants.wix import auth_for, client_for, make_client
from wixapi.client import ApiKeyAuth, WixClient
from wixapi.errors import WixRateLimited

pytestmark = pytest.mark.django_db

WINDOW = 0.4


def window_of(moment: float) -> int:
    return math.floor(moment / WINDOW)


def start_of_window() -> None:
    """Sleep to just after a window begins, so a test's first requests share one window."""
    now = time.time()
    time.sleep((window_of(now) + 1) * WINDOW - now + 0.005)


def budget(site_id: str, **kwargs) -> SiteBudget:
    return SiteBudget(site_id=site_id, **{"limit": 3, "window_seconds": WINDOW, **kwargs})


def test_budget_lets_the_limit_through_then_waits_for_the_next_window():
    site = budget("site-a")
    start_of_window()

    passed = []
    for _ in range(4):
        site.acquire()
        passed.append(time.time())

    first = window_of(passed[0])
    assert [window_of(t) for t in passed[:3]] == [first] * 3
    assert passed[2] - passed[0] < WINDOW / 4
    assert window_of(passed[3]) == first + 1


def test_budget_gives_up_after_the_maximum_wait():
    site = budget("site-a", limit=1, max_wait_seconds=0.05)
    start_of_window()
    site.acquire()

    started = time.monotonic()
    with pytest.raises(BudgetExhausted) as caught:
        site.acquire()

    # It does not sleep when the next window is beyond the wait allowed.
    assert time.monotonic() - started < 0.05
    assert isinstance(caught.value, WixRateLimited)
    assert caught.value.code == "REQUEST_BUDGET_EXHAUSTED"
    assert str(caught.value) == (
        "Wix REQUEST_BUDGET_EXHAUSTED: The request budget of site site-a "
        "(1 per 0.4 s) stayed spent for 0.05 s"
    )


def test_budget_is_shared_by_clients_of_one_site(wix_sandbox):
    site = wix_sandbox.add_site(name="Salon Aurora")
    key = wix_sandbox.create_api_key(site.account_id)

    def client() -> WixClient:
        # A budget object of its own, as another worker would have.
        return WixClient(
            wix_sandbox.url,
            auth=ApiKeyAuth(api_key=key, site_id=site.id),
            before_request=budget(site.id, max_wait_seconds=0.05),
        )

    first, second = client(), client()
    start_of_window()
    first.list_providers()
    second.list_providers()
    first.list_providers()

    with pytest.raises(BudgetExhausted):
        second.list_providers()
    assert wix_sandbox.count_requests(site.id) == 3
    assert second.calls == 1


def test_sites_have_separate_budgets():
    start_of_window()
    for _ in range(3):
        budget("site-a").acquire()

    started = time.monotonic()
    budget("site-b").acquire()

    assert time.monotonic() - started < 0.05
    with pytest.raises(BudgetExhausted):
        budget("site-a", max_wait_seconds=0.05).acquire()


def test_retries_inside_the_client_are_not_counted(wix_sandbox):
    site = wix_sandbox.add_site(name="Salon Aurora")
    auth = ApiKeyAuth(api_key=wix_sandbox.create_api_key(site.account_id), site_id=site.id)
    client = make_client(auth, before_request=budget(site.id, limit=2, max_wait_seconds=0.05))
    wix_sandbox.faults(site.id).rate_limit(times=1, retry_after=0)
    start_of_window()

    client.list_providers()
    client.list_providers()

    assert wix_sandbox.count_requests(site.id) == 3
    with pytest.raises(BudgetExhausted):
        client.list_providers()


def test_an_exhausted_budget_fails_the_refresh_as_retryable(wix_sandbox, site, tenant):
    client = make_client(
        auth_for(tenant), before_request=budget(site.id, limit=1, max_wait_seconds=0.05)
    )
    start_of_window()

    run = tenant_refresh(tenant, client=client)

    assert (run.outcome, run.error_code, run.wix_calls) == (
        "failed",
        "REQUEST_BUDGET_EXHAUSTED",
        1,
    )
    assert run.retryable


def test_tenant_clients_use_the_site_budget_from_settings(settings, tenant):
    settings.WIX_SITE_REQUESTS_PER_MINUTE = 180

    client = client_for(tenant)

    assert client.before_request == SiteBudget(site_id=tenant.site_id, limit=15, window_seconds=5.0)


@pytest.mark.parametrize(
    ("per_minute", "limit", "window"), [(180, 15, 5.0), (100, 9, 5.4), (5, 1, 12.0)]
)
def test_budget_keeps_the_rate_with_short_windows(settings, per_minute, limit, window):
    """The minute is cut in about 12 windows, so a burst at a boundary stays under Wix's 200."""
    settings.WIX_SITE_REQUESTS_PER_MINUTE = per_minute

    site = budget_for("site-a")

    assert (site.limit, site.window_seconds) == pytest.approx((limit, window))
    assert site.limit * 60 / site.window_seconds == pytest.approx(per_minute)


@pytest.mark.parametrize("per_minute", [0, -1])
def test_budget_is_disabled_at_zero_or_less(settings, tenant, per_minute):
    settings.WIX_SITE_REQUESTS_PER_MINUTE = per_minute

    assert budget_for(tenant.site_id) is None
    assert client_for(tenant).before_request is None
