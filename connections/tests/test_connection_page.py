"""A connection's page as an operator uses it: its buttons, its labels, its long Wix ID; and
the tenant page's sections. Against the sandbox, over HTTP."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from connections.models import CALENDAR_TYPE_LABELS, Connection, ConnectRequest, choices
from connections.tests.builders import CHANGELIST, add_site, connection
from tenants.models import AuditEvent
from tenants.tests.builders import messages_of, staff_user
from wixapi import types as wix

pytestmark = pytest.mark.django_db

ANNA = "Salon Aurora: Anna Lee (Google)"
BEN = "Salon Aurora: Ben Okafor (Microsoft)"
# The page's buttons, by the id each carries.
BUTTONS = {"portal-refresh", "portal-reconnect", "portal-disconnect"}


@pytest.fixture
def aurora(wix_sandbox):
    return add_site(
        wix_sandbox,
        "Salon Aurora",
        [
            {"name": "Anna Lee", "calendar_type": "GOOGLE", "email": "anna@aurora.test"},
            {
                "name": "Ben Okafor",
                "calendar_type": "MICROSOFT",
                "status": "ERROR",
                "error_reason": "TOKEN_REVOKED",
                "email": "ben@aurora.test",
            },
            {
                "name": "Diego Ruiz",
                "calendar_type": "I_CAL",
                "status": "DISCONNECTED",
                "email": "diego@aurora.test",
            },
        ],
    )


def change_url(row) -> str:
    return reverse("admin:connections_connection_change", args=[row.pk])


def act_url(row, action: str) -> str:
    return reverse("admin:connections_connection_act", args=[row.pk, action])


def sync_url(row) -> str:
    return reverse("admin:connections_connection_sync", args=[row.pk])


def buttons(html: str) -> set[str]:
    """The action buttons on a page, and "sync" when it links to the sync settings."""
    found = set(re.findall(r'<button type="submit" class="portal-tool[^"]*" id="([\w-]+)"', html))
    if 'class="portal-sync-link"' in html:
        found.add("sync")
    return found


def forms_posting_to(html: str, url: str) -> list[str]:
    return re.findall(rf'<form method="post" action="{re.escape(url)}"[^>]*>(.*?)</form>', html)


def wix_json(sandbox, tenant, row) -> dict:
    return sandbox.connection_json(tenant.site_id, row.wix_id)


# --- Buttons: who sees which --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # Synced: nothing to reconnect.
        ("Anna Lee", {"portal-refresh", "sync", "portal-disconnect"}),
        # Broken, and Microsoft connects by OAuth: a link can be had.
        ("Ben Okafor", {"portal-refresh", "portal-reconnect", "sync", "portal-disconnect"}),
        # Disconnected already; Apple iCal connects by password and keeps its settings.
        ("Diego Ruiz", {"portal-refresh"}),
    ],
)
def test_operator_sees_the_buttons_that_make_sense(client, operator_of_a, tenant_a, name, expected):
    row = connection(tenant_a, name)

    html = client.get(change_url(row)).content.decode()

    assert buttons(html) == expected
    for button, action in [
        ("portal-refresh", "refresh"),
        ("portal-reconnect", "reconnect_link"),
        ("portal-disconnect", "disconnect"),
    ]:
        forms = forms_posting_to(html, act_url(row, action))
        assert len(forms) == (button in expected), button
        # Each is a POST carrying the CSRF token.
        assert all('name="csrfmiddlewaretoken"' in form for form in forms)
    assert (f'href="{sync_url(row)}"' in html) == ("sync" in expected)


def test_superuser_sees_the_buttons(admin_client, tenant_a):
    html = admin_client.get(change_url(connection(tenant_a, "Ben Okafor"))).content.decode()

    assert buttons(html) == BUTTONS | {"sync"}


def test_viewer_sees_no_buttons(client, viewer_of_a, tenant_a):
    for name in ["Anna Lee", "Ben Okafor", "Diego Ruiz"]:
        row = connection(tenant_a, name)
        response = client.get(change_url(row))

        assert response.status_code == 200
        html = response.content.decode()
        assert buttons(html) == set()
        assert "/act/" not in html


def test_operator_of_one_tenant_sees_no_buttons_on_another(client, tenant_a, tenant_b):
    """Operator of one tenant, viewer of another: buttons only on her own tenant's rows."""
    client.force_login(staff_user("mixed", operator_of=(tenant_b,), viewer_of=(tenant_a,)))

    html = client.get(change_url(connection(tenant_a, "Ben Okafor"))).content.decode()
    assert buttons(html) == set()
    html = client.get(change_url(connection(tenant_b, "Farah Haddad"))).content.decode()
    assert buttons(html) == {"portal-refresh", "sync", "portal-disconnect"}


def test_other_tenants_staff_find_neither_page_nor_actions(
    client, wix_sandbox, operator_of_a, tenant_b
):
    farah = connection(tenant_b, "Farah Haddad")
    before, calls = wix_json(wix_sandbox, tenant_b, farah), len(wix_sandbox.requests)

    # Django's answer to a missing object: back to the index, as for any id.
    page = client.get(change_url(farah))
    assert (page.status_code, page["Location"]) == (302, reverse("admin:index"))
    for action in ["refresh", "disconnect", "reconnect_link"]:
        assert client.post(act_url(farah, action), {"post": "yes"}).status_code == 404
    assert wix_json(wix_sandbox, tenant_b, farah) == before
    assert len(wix_sandbox.requests) == calls
    assert not AuditEvent.objects.exists()


# --- Buttons: what they do and refuse -----------------------------------------------------


def test_actions_answer_posts_only(client, wix_sandbox, operator_of_a, tenant_a):
    anna = connection(tenant_a, "Anna Lee")
    calls = len(wix_sandbox.requests)

    for action in ["refresh", "disconnect", "reconnect_link"]:
        response = client.get(act_url(anna, action) + "?post=yes")
        assert response.status_code == 405
        assert response["Allow"] == "POST"
    assert len(wix_sandbox.requests) == calls
    assert wix_json(wix_sandbox, tenant_a, anna)["status"] == "SYNCED"
    assert not AuditEvent.objects.exists()


def test_only_the_offered_actions_run(client, wix_sandbox, operator_of_a, tenant_a):
    anna = connection(tenant_a, "Anna Lee")
    calls = len(wix_sandbox.requests)

    for action in ["disable_export", "delete_selected", "sync_view"]:
        assert client.post(act_url(anna, action)).status_code == 404
    assert len(wix_sandbox.requests) == calls


def test_forged_post_by_a_viewer_is_refused(client, wix_sandbox, viewer_of_a, tenant_a):
    ben = connection(tenant_a, "Ben Okafor")
    before, calls = wix_json(wix_sandbox, tenant_a, ben), len(wix_sandbox.requests)

    for action in ["refresh", "disconnect", "reconnect_link"]:
        response = client.post(act_url(ben, action), {"post": "yes"})
        assert response.status_code == 403, action

    assert wix_json(wix_sandbox, tenant_a, ben) == before
    assert len(wix_sandbox.requests) == calls
    assert Connection.objects.get(pk=ben.pk).raw == ben.raw
    assert not ConnectRequest.objects.exists()
    denied = AuditEvent.objects.filter(outcome="denied")
    assert sorted(denied.values_list("action", flat=True)) == [
        "connection.disconnect",
        "connection.reconnect_link",
        "connection.refresh",
    ]
    assert not AuditEvent.objects.exclude(outcome="denied").exists()


def test_a_post_without_the_csrf_token_is_refused(wix_sandbox, operator_of_a, tenant_a):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator_of_a)
    anna = connection(tenant_a, "Anna Lee")
    calls = len(wix_sandbox.requests)

    response = strict.post(act_url(anna, "disconnect"), {"post": "yes"})

    assert response.status_code == 403
    assert len(wix_sandbox.requests) == calls
    assert wix_json(wix_sandbox, tenant_a, anna)["status"] == "SYNCED"


def test_refresh_button(client, wix_sandbox, operator_of_a, tenant_a, aurora):
    anna = connection(tenant_a, "Anna Lee")
    wix_sandbox.set_connection_error(aurora.id, anna.wix_id, "EXTERNAL_CALENDAR_DELETED")

    response = client.post(act_url(anna, "refresh"))

    assert response.status_code == 302
    assert response["Location"] == change_url(anna)
    assert messages_of(response) == [f"{ANNA}: refreshed from Wix; status Error."]
    row = connection(tenant_a, "Anna Lee")
    assert (row.status, row.error_reason) == ("ERROR", "EXTERNAL_CALENDAR_DELETED")
    assert AuditEvent.objects.filter(action="refresh_connection", outcome="ok").count() == 1


def test_refresh_button_with_wix_down(client, wix_sandbox, operator_of_a, tenant_a, aurora):
    wix_sandbox.faults(aurora.id).server_error(times=3, status=503)

    response = client.post(act_url(connection(tenant_a, "Anna Lee"), "refresh"))

    assert response.status_code == 302
    assert messages_of(response) == [
        f"{ANNA}: not refreshed. Wix failed on its side (gave up after 2 retries) "
        "(Wix: UNAVAILABLE)"
    ]


def test_disconnect_button_asks_first(client, wix_sandbox, operator_of_a, tenant_a):
    anna = connection(tenant_a, "Anna Lee")

    asked = client.post(act_url(anna, "disconnect"))

    assert asked.status_code == 200
    assert asked.templates[0].name == "admin/connections/connection/disconnect_confirmation.html"
    html = asked.content.decode()
    assert f"{ANNA} · anna@aurora.test · Synced" in html
    assert 'value="Confirm: disconnect"' in html
    # Confirm posts back to the same URL; Cancel goes back to the page, changing nothing.
    assert '<form method="post">' in html
    assert f'href="{change_url(anna)}" class="button cancel-link">Cancel</a>' in html
    assert wix_json(wix_sandbox, tenant_a, anna)["status"] == "SYNCED"
    assert not AuditEvent.objects.exists()

    done = client.post(
        act_url(anna, "disconnect"),
        {"action": "disconnect", "post": "yes", "_selected_action": [str(anna.pk)]},
    )

    assert done.status_code == 302
    assert done["Location"] == change_url(anna)
    assert messages_of(done) == [f"{ANNA}: disconnected; Wix shows it as Disconnected."]
    assert wix_json(wix_sandbox, tenant_a, anna)["status"] == "DISCONNECTED"
    assert connection(tenant_a, "Anna Lee").status == "DISCONNECTED"
    # Now disconnected: the page no longer offers to disconnect it.
    assert "portal-disconnect" not in buttons(client.get(change_url(anna)).content.decode())


def test_disconnect_acts_on_the_pages_connection_only(client, wix_sandbox, operator_of_a, tenant_a):
    """A forged selection in the confirmation's POST does not widen it."""
    anna, ben = connection(tenant_a, "Anna Lee"), connection(tenant_a, "Ben Okafor")

    client.post(
        act_url(anna, "disconnect"),
        {"action": "disconnect", "post": "yes", "_selected_action": [str(ben.pk)]},
    )

    assert wix_json(wix_sandbox, tenant_a, anna)["status"] == "DISCONNECTED"
    assert wix_json(wix_sandbox, tenant_a, ben)["status"] == "ERROR"


def test_reconnect_link_button(client, wix_sandbox, operator_of_a, tenant_a):
    ben = connection(tenant_a, "Ben Okafor")

    response = client.post(act_url(ben, "reconnect_link"))

    assert response.status_code == 302
    assert response["Location"] == change_url(ben)
    request = ConnectRequest.objects.get()
    assert (request.schedule.name, request.provider.name) == ("Ben Okafor", "Microsoft")
    assert messages_of(response) == [
        f"{BEN}: send this link to the calendar owner to reconnect (valid for 24 hours): "
        f'<a href="{request.oauth_url}">{request.oauth_url}</a>'
    ]


def test_reconnect_link_for_a_connection_the_rules_refuse(
    client, wix_sandbox, operator_of_a, tenant_a
):
    """Posted anyway (an old page), the action says why, as it does from the list."""
    anna = connection(tenant_a, "Anna Lee")
    calls = len(wix_sandbox.requests)

    response = client.post(act_url(anna, "reconnect_link"))

    assert messages_of(response) == [f"{ANNA}: not broken (Synced); nothing to reconnect."]
    assert len(wix_sandbox.requests) == calls
    assert not ConnectRequest.objects.exists()


# --- Calendar type labels -----------------------------------------------------------------

WIX_NAMES = {
    "GOOGLE": "Google",
    "MICROSOFT": "Microsoft",
    "I_CAL": "Apple iCal",
    "OTHER": "Other",
    "UNDEFINED": "Undefined",
    "OUTLOOK": "Outlook (deprecated, now Microsoft)",
    "OFFICE_365": "Office 365 (deprecated, now Microsoft)",
}


def test_calendar_types_carry_wix_names():
    assert dict(choices(wix.CalendarType)) == WIX_NAMES
    assert set(CALENDAR_TYPE_LABELS) == set(wix.CalendarType)
    assert dict(Connection._meta.get_field("calendar_type").choices) == WIX_NAMES
    # Other enums keep their labels from their values.
    assert dict(choices(wix.Status))["SYNC_IN_PROGRESS"] == "Sync in progress"


def test_calendar_type_labels_in_the_list_filter_and_page(client, operator_of_a, tenant_a):
    html = client.get(reverse(CHANGELIST)).content.decode()
    for label in WIX_NAMES.values():
        assert f">{label}</a>" in html, label
    for old in ["I cal", "Office 365</a>", ">Outlook</a>"]:
        assert old not in html, old

    diego = connection(tenant_a, "Diego Ruiz")
    page = client.get(change_url(diego)).content.decode()
    assert re.search(r"field-calendar_type.*?<div class=\"readonly\">Apple iCal</div>", page, re.S)


def test_calendar_type_labels_on_the_tenant_page(client, operator_of_a, tenant_a):
    html = client.get(reverse("admin:tenants_tenant_change", args=[tenant_a.pk])).content.decode()
    providers = html[html.index('id="tenant-providers"') : html.index('id="tenant-schedules"')]

    assert "<td>Apple iCal</td>" in providers
    assert "I cal" not in html


# --- The Wix ID, and the tenant page's sections ------------------------------------------


def admin_css() -> str:
    with open(finders.find("portal/admin.css"), encoding="utf-8") as css:
        return css.read()


def rule_for(css: str, selector: str) -> str:
    """The declarations of the rule whose selector list holds `selector`."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", css):
        if selector in [s.strip() for s in selectors.split(",")]:
            return body
    raise AssertionError(f"no rule for {selector}")


def test_the_wix_id_wraps(client, operator_of_a, tenant_a):
    anna = connection(tenant_a, "Anna Lee")
    assert len(anna.wix_id) > 100

    html = client.get(change_url(anna)).content.decode()

    assert re.search(
        rf'field-wix_id.*?<div class="readonly">{re.escape(anna.wix_id)}</div>', html, re.S
    )
    assert "/static/portal/admin.css" in html
    css = admin_css()
    for selector in [".field-wix_id .readonly", "#result_list td.field-wix_id", ".messagelist li"]:
        body = rule_for(css, selector)
        assert "overflow-wrap: anywhere" in body, selector
        # Inside the admin's flex rows an item shrinks below its content only with this.
        assert "min-width: 0" in body, selector


def test_tenant_page_has_no_empty_or_untitled_bars(client, admin_client, operator_of_a, tenant_a):
    url = reverse("admin:tenants_tenant_change", args=[tenant_a.pk])
    for browser in [client, admin_client]:
        html = browser.get(url).content.decode()
        # Every heading says something, and every fieldset holds rows.
        assert not re.search(r"<h2[^>]*>\s*</h2>", html)
        for fieldset in re.findall(r"<fieldset.*?</fieldset>", html, re.S):
            assert 'class="form-row' in fieldset or "<table" in fieldset
    # The mirror's modules come after the floated form, not behind it.
    assert "clear: both" in rule_for(admin_css(), "#tenant-mirror")
