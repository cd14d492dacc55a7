"""The admin in a real browser: Debian's chromium through Playwright, against a live server
talking to the Wix sandbox, seeded with the demo sites.

Screenshots of the dashboard and the connection list go to a temporary folder, or to
`docs/` when SAVE_SCREENSHOTS=1 (that is how docs/dashboard.png and docs/connections.png
are made).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from connections.models import Connection, RefreshOutcome
from connections.services.refresh import tenant_refresh
from portal.tests.builders import PASSWORD, TIMEOUT_MS, log_in_with_the_form
from tenants.tests.builders import staff_user, superuser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # The live server's WhiteNoise looks for collected files; the tests serve them unbuilt.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
    # pytest-base-url (pulled in by pytest-playwright) still defines its fixture that way.
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]

DOCS = Path(__file__).resolve().parents[2] / "docs"
USERNAME = "agency-admin"
CONNECTIONS = "/admin/connections/connection/"


@pytest.fixture
def admin_page(page: Page, live_server, demo) -> Page:
    """A browser page logged in to the admin as a superuser, through the login form."""
    superuser(USERNAME, password=PASSWORD)
    page.set_default_timeout(TIMEOUT_MS)
    log_in_with_the_form(page, live_server.url, USERNAME)
    return page


def result_rows(page: Page):
    return page.locator("#result_list tbody tr")


def status_filter(page: Page, label: str):
    """The link `label` of the connection list's status filter."""
    return page.locator('#changelist-filter details[data-filter-title="status"]').get_by_role(
        "link", name=label, exact=True
    )


def screenshot(page: Page, name: str, tmp_path: Path) -> Path:
    folder = DOCS if os.environ.get("SAVE_SCREENSHOTS") == "1" else tmp_path
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_dashboard_and_connection_list_screenshots(
    admin_page, live_server, wix_sandbox, demo, tmp_path
):
    """The dashboard shows demo-like data; both pages are captured for the README."""
    physio = demo["Cedar Physio"]
    wix_sandbox.faults(physio.site_id).server_error(times=20, status=503)
    assert tenant_refresh(physio).outcome == RefreshOutcome.FAILED
    wix_sandbox.faults(physio.site_id).clear()

    admin_page.goto(f"{live_server.url}/admin/")
    broken = admin_page.locator("#portal-broken tbody tr")
    expect(broken).to_have_count(4)
    expect(admin_page.locator("#portal-broken")).to_contain_text("Chloe Martin")
    expect(admin_page.locator("#portal-stale")).to_contain_text("Cedar Physio")
    expect(admin_page.locator('#portal-totals [data-status="ERROR"] .portal-num')).to_have_text("3")
    dashboard = screenshot(admin_page, "dashboard.png", tmp_path)

    admin_page.goto(f"{live_server.url}{CONNECTIONS}")
    expect(admin_page.locator("#result_list")).to_be_visible()
    connections = screenshot(admin_page, "connections.png", tmp_path)

    assert dashboard.stat().st_size > 10_000
    assert connections.stat().st_size > 10_000


def test_filter_broken_connections(admin_page, live_server):
    admin_page.goto(f"{live_server.url}{CONNECTIONS}")
    expect(result_rows(admin_page)).to_have_count(Connection.objects.count())

    status_filter(admin_page, "Error").click()

    errors = Connection.objects.filter(status="ERROR")
    expect(result_rows(admin_page)).to_have_count(errors.count())
    assert errors.count() == 3
    for row in result_rows(admin_page).all():
        expect(row).to_contain_text("Error")
        expect(row).not_to_contain_text("Synced")
    for name in ("Chloe Martin", "Farah Haddad", "Ivan Petrov"):
        expect(admin_page.locator("#result_list")).to_contain_text(name)


def test_disconnect_through_the_confirmation_page(admin_page, live_server, wix_sandbox, demo):
    chloe = Connection.objects.get(schedule__name="Chloe Martin")
    admin_page.goto(f"{live_server.url}{CONNECTIONS}?status__exact=ERROR")

    row = result_rows(admin_page).filter(has_text="Chloe Martin")
    row.locator("input.action-select").check()
    actions = admin_page.locator("select[name=action] option")
    disconnect = next(
        value
        for value, text in zip(
            actions.evaluate_all("os => os.map(o => o.value)"),
            actions.all_inner_texts(),
            strict=True,
        )
        if re.search(r"\bdisconnect\b", text, re.IGNORECASE)
    )
    admin_page.select_option("select[name=action]", disconnect)
    admin_page.get_by_role("button", name="Go").click()

    # The confirmation page lists what is disconnected and says what it does.
    content = admin_page.locator("#content")
    expect(content).to_contain_text("Chloe Martin")
    expect(content).to_contain_text(re.compile("disconnect", re.IGNORECASE))
    assert wix_sandbox.connection(demo["Salon Aurora"].site_id, chloe.wix_id).status == "ERROR"
    content.locator("form").first.locator("input[type=submit], button[type=submit]").first.click()

    admin_page.goto(f"{live_server.url}{CONNECTIONS}?q=Chloe")
    row = result_rows(admin_page).filter(has_text="Chloe Martin")
    expect(row).to_contain_text("Disconnected")
    chloe.refresh_from_db()
    assert chloe.status == "DISCONNECTED"
    sandbox_connection = wix_sandbox.connection(demo["Salon Aurora"].site_id, chloe.wix_id)
    assert sandbox_connection.status == "DISCONNECTED"


def test_connect_a_calendar_through_oauth(admin_page, live_server, wix_sandbox, demo):
    aurora = demo["Salon Aurora"]
    admin_page.goto(f"{live_server.url}/admin/tenants/tenant/{aurora.pk}/change/")
    admin_page.get_by_role("link", name=re.compile("connect a calendar", re.IGNORECASE)).click()

    # Emma Novak has no calendar yet; Google connects through OAuth, Apple iCal does not.
    form = admin_page.locator("#content form").first
    form.locator("select[name=schedule]").select_option(label="Emma Novak")
    form.locator("input[name=method][value=OAUTH]").check()
    providers = form.locator("select[name=provider] option:not([disabled])")
    offered = dict(
        zip(
            providers.all_inner_texts(),
            providers.evaluate_all("os => os.map(o => o.value)"),
            strict=True,
        )
    )
    assert not any(text.startswith("Apple iCal") for text in offered)
    google = next(value for text, value in offered.items() if text.startswith("Google"))
    form.locator("select[name=provider]").select_option(google)
    form.locator("input[type=submit], button[type=submit]").first.click()

    consent = re.escape(wix_sandbox.url) + r"/_sandbox/oauth/consent/[\w-]+"
    shown = re.search(consent, admin_page.content())
    assert shown, "the page shows the oauthUrl"
    expect(admin_page.get_by_role("button", name=re.compile("copy", re.IGNORECASE))).to_be_visible()

    admin_page.goto(shown.group(0))
    expect(admin_page.get_by_role("heading")).to_contain_text("Connect your Google calendar")
    admin_page.get_by_role("button", name="Approve").click()

    admin_page.wait_for_url(re.compile(r"/connect/return/"))
    expect(admin_page.get_by_role("heading")).to_have_text("Calendar connected")
    expect(admin_page.locator("body")).to_contain_text("Emma Novak")

    admin_page.goto(f"{live_server.url}{CONNECTIONS}?q=emma")
    row = result_rows(admin_page).filter(has_text="Emma Novak")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Connected")
    connection = Connection.objects.get(schedule__name="Emma Novak")
    assert connection.wix_id in wix_sandbox.site(aurora.site_id).connections


def test_operator_refreshes_a_connection_from_its_page(
    page: Page, live_server, wix_sandbox, demo, tmp_path
):
    """An operator of Salon Aurora presses Refresh on Chloe Martin's page: Wix's newer state
    arrives with a success message, and the long Wix ID stays inside its box."""
    aurora = demo["Salon Aurora"]
    staff_user("olga", operator_of=(aurora,), password=PASSWORD)
    chloe = Connection.objects.get(tenant=aurora, schedule__name="Chloe Martin")
    wix_sandbox.set_connection_error(aurora.site_id, chloe.wix_id, "EXTERNAL_CALENDAR_DELETED")
    page.set_default_timeout(TIMEOUT_MS)
    log_in_with_the_form(page, live_server.url, "olga")

    page.goto(f"{live_server.url}{CONNECTIONS}{chloe.pk}/change/")
    tools = page.locator(".object-tools")
    for name in ("Refresh", "Reconnect link", "Sync settings", "Disconnect…"):
        control = tools.get_by_role("button", name=name).or_(tools.get_by_role("link", name=name))
        expect(control).to_be_visible()
    # The Wix ID (about 160 characters, no spaces) wraps inside its box and the page.
    wix_id = page.locator(".field-wix_id .readonly")
    expect(wix_id).to_have_text(chloe.wix_id)
    sizes = wix_id.evaluate(
        """e => ({scroll: e.scrollWidth, client: e.clientWidth,
                  right: e.getBoundingClientRect().right,
                  box: e.closest('fieldset').getBoundingClientRect().right,
                  page: document.documentElement.scrollWidth,
                  view: document.documentElement.clientWidth})"""
    )
    assert sizes["scroll"] <= sizes["client"], sizes
    assert sizes["right"] <= sizes["box"], sizes
    assert sizes["page"] <= sizes["view"], sizes
    screenshot(page, "connection.png", tmp_path)

    tools.get_by_role("button", name="Refresh").click()

    page.wait_for_url(f"{live_server.url}{CONNECTIONS}{chloe.pk}/change/")
    success = page.locator(".messagelist .success")
    expect(success).to_contain_text("Chloe Martin")
    expect(success).to_contain_text("refreshed from Wix; status Error")
    expect(page.locator(".field-error_reason .readonly")).to_have_text("External calendar deleted")
    assert screenshot(page, "connection-refreshed.png", tmp_path).stat().st_size > 10_000
