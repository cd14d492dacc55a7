"""The connection admin against the sandbox: list, actions, change page and sync settings."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from connections.admin.connections import ConnectionAdmin
from connections.models import Connection, ConnectRequest
from connections.services.refresh import tenant_refresh
from connections.tests.builders import CHANGELIST, add_site, connection, consent, post_action
from tenants import access
from tenants.admin_scoping import ScopedTenantFilter
from tenants.models import AuditEvent, Role, Tenant, TenantMembership
from tenants.tests.builders import messages_of, staff_user
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

ZOHO = {
    "name": "Zoho",
    "calendar_type": "OTHER",
    "connect_methods": ("OAUTH",),
    "update_sync_config": True,
    "list_event_from_calendars": "PRIMARY_CALENDAR_ONLY",
    "sync_to_calendar": "NOT_SUPPORTED",
}
WIX_500 = "Wix failed on its side (Wix: INTERNAL)"
WIX_503 = "Wix failed on its side (gave up after 2 retries) (Wix: UNAVAILABLE)"
ANNA = "Salon Aurora: Anna Lee (Google)"
BEN = "Salon Aurora: Ben Okafor (Microsoft)"
CHLOE = "Salon Aurora: Chloe Martin (Apple iCal)"
DANA = "Salon Aurora: Dana Wu (Zoho)"
DIEGO = "Salon Aurora: Diego Ruiz (Apple iCal)"


@pytest.fixture
def aurora(wix_sandbox):
    return add_site(
        wix_sandbox,
        "Salon Aurora",
        [
            {
                "name": "Anna Lee",
                "calendar_type": "GOOGLE",
                "email": "anna@aurora.test",
                "import_mode": "PRIMARY",
                "export_mode": "DEDICATED",
            },
            {
                "name": "Ben Okafor",
                "calendar_type": "MICROSOFT",
                "status": "ERROR",
                "error_reason": "TOKEN_REVOKED",
                "email": "ben@aurora.test",
            },
            {
                "name": "Chloe Martin",
                "calendar_type": "I_CAL",
                "status": "CONNECTED",
                "email": "chloe@aurora.test",
            },
            {"name": "Dana Wu", "calendar_type": "OTHER", "email": "dana@aurora.test"},
            {
                "name": "Diego Ruiz",
                "calendar_type": "I_CAL",
                "status": "DISCONNECTED",
                "email": "diego@aurora.test",
            },
        ],
        providers=[ZOHO],
    )


def wix_status(sandbox, site, name) -> str:
    return sandbox.connection_json(site.id, site.connections[name])["status"]


def wix_sync(sandbox, site, name) -> dict:
    return sandbox.connection_json(site.id, site.connections[name])["syncConfig"]


def listed(response) -> set[str]:
    """Account emails of the connections on a changelist page."""
    return {row.external_account_email for row in response.context["cl"].result_list}


def sync_url(row) -> str:
    return reverse("admin:connections_connection_sync", args=[row.pk])


def change_url(row) -> str:
    return reverse("admin:connections_connection_change", args=[row.pk])


# --- The list ---------------------------------------------------------------------------


def test_list_shows_the_columns(client, operator_of_a, tenant_a):
    response = client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    html = response.content.decode()
    assert listed(response) == {
        "anna@aurora.test",
        "ben@aurora.test",
        "chloe@aurora.test",
        "dana@aurora.test",
        "diego@aurora.test",
    }
    for text in [
        "Salon Aurora",
        "Anna Lee",
        "Google",
        '<span class="portal-badge portal-good">Synced</span>',
        '<span class="portal-badge portal-bad">Error</span>',
        "Token revoked",
        "On, from the primary calendar",
        "On, to a dedicated calendar",
    ]:
        assert text in html, text
    assert response.context["cl"].result_count == 5


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status__exact=ERROR", {"Ben Okafor"}),
        ("error_reason__exact=TOKEN_REVOKED", {"Ben Okafor"}),
        ("calendar_type__exact=I_CAL", {"Chloe Martin", "Diego Ruiz"}),
        ("export_enabled__exact=0", {"Chloe Martin", "Dana Wu", "Diego Ruiz"}),
        ("import_enabled__exact=1&calendar_type__exact=GOOGLE", {"Anna Lee"}),
        ("q=ben%40aurora", {"Ben Okafor"}),
        ("q=Dana", {"Dana Wu"}),
        ("q=Salon+Aurora&status__exact=DISCONNECTED", {"Diego Ruiz"}),
    ],
)
def test_filters_and_search(client, operator_of_a, query, expected):
    response = client.get(f"{reverse(CHANGELIST)}?{query}")

    assert response.status_code == 200
    assert {row.schedule.name for row in response.context["cl"].result_list} == expected


def test_search_by_wix_id(client, operator_of_a, tenant_a, aurora):
    wix_id = aurora.connections["Anna Lee"]

    response = client.get(f"{reverse(CHANGELIST)}?q={wix_id[:40]}")

    assert [row.wix_id for row in response.context["cl"].result_list] == [wix_id]


def test_removed_filter(client, wix_sandbox, operator_of_a, tenant_a, aurora):
    wix_sandbox.remove_connection(aurora.id, aurora.connections["Dana Wu"])
    tenant_refresh(tenant_a)

    def names(query):
        response = client.get(f"{reverse(CHANGELIST)}{query}")
        return {row.schedule.name for row in response.context["cl"].result_list}

    assert "Dana Wu" not in names("")
    assert names("?removed=yes") == {"Dana Wu"}
    assert "Dana Wu" in names("?removed=all")
    html = client.get(f"{reverse(CHANGELIST)}?removed=yes").content.decode()
    assert "Removed from Wix" in html


def test_list_query_count_is_constant(client, wix_sandbox, operator_of_a, tenant_a, aurora):
    url = f"{reverse(CHANGELIST)}?removed=all"
    client.get(url)  # warm up the session and content types
    with CaptureQueriesContext(db) as few:
        assert len(client.get(url).context["cl"].result_list) == 5
    for number in range(25):
        schedule = wix_sandbox.add_schedule(aurora.id, name=f"Extra {number}")
        wix_sandbox.add_connection(aurora.id, schedule_id=schedule, calendar_type="GOOGLE")
    tenant_refresh(tenant_a)

    with CaptureQueriesContext(db) as many:
        assert len(client.get(url).context["cl"].result_list) == 30

    assert len(many) == len(few)


def test_list_query_count_bounded_with_django_assert(
    client, django_assert_max_num_queries, wix_sandbox, operator_of_a, tenant_a, aurora
):
    url = reverse(CHANGELIST)
    client.get(url)
    with CaptureQueriesContext(db) as one_row:
        assert client.get(f"{url}?q=Anna").context["cl"].result_count == 1
    for number in range(30):
        schedule = wix_sandbox.add_schedule(aurora.id, name=f"Anna {number}")
        wix_sandbox.add_connection(aurora.id, schedule_id=schedule, calendar_type="MICROSOFT")
    tenant_refresh(tenant_a)

    with django_assert_max_num_queries(len(one_row)):
        response = client.get(f"{url}?q=Anna")

    assert response.context["cl"].result_count == 31


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ANNA@aurora", {"Anna Lee"}),
        ("anna@aurora.test", {"Anna Lee"}),
        ("aurora.test", set()),
        ("dana w", {"Dana Wu"}),
        ("Wu", set()),
        ("salon aurora", {"Anna Lee", "Ben Okafor", "Chloe Martin", "Dana Wu", "Diego Ruiz"}),
        ("Aurora", set()),
        ('"Ben Okafor"', {"Ben Okafor"}),
    ],
)
def test_search_matches_the_start_of_each_field(client, operator_of_a, query, expected):
    """Search takes the whole text as the start of an email, schedule or tenant name (any case)."""
    response = client.get(reverse(CHANGELIST), {"q": query})

    # Wix IDs are random: one may happen to start with a query ("Wu"), and is rightly found.
    found = response.context["cl"].result_list
    assert {row.schedule.name for row in found if not row.wix_id.startswith(query)} == expected


def test_search_by_wix_id_is_a_prefix(client, operator_of_a, tenant_a, aurora):
    wix_id = aurora.connections["Anna Lee"]

    assert client.get(reverse(CHANGELIST), {"q": wix_id[1:20]}).context["cl"].result_count == 0
    assert client.get(reverse(CHANGELIST), {"q": wix_id[:8]}).context["cl"].result_count == 1


def test_search_says_what_it_matches(client, operator_of_a):
    html = client.get(reverse(CHANGELIST)).content.decode()

    assert "account email, schedule name or tenant name starts with the text" in html


def test_staff_list_reads_memberships_once(client, operator_of_a, tenant_a):
    """Every permission check and the sidebar share one read of the user's memberships."""
    url = f"{reverse(CHANGELIST)}?status__exact=ERROR"
    client.get(url)

    with CaptureQueriesContext(db) as queries:
        assert client.get(url).status_code == 200

    membership_reads = [q for q in queries if "tenants_tenantmembership" in q["sql"]]
    assert len(membership_reads) == 1
    assert len(queries) <= 10


def test_cached_memberships_follow_changes_to_them(tenant_a, tenant_b):
    """A user object kept across membership changes sees them (the cache is per user object)."""
    user = staff_user("sam", viewer_of=(tenant_a,))
    assert (access.can_see(user, tenant_a), access.can_act(user, tenant_a)) == (True, False)
    assert not access.is_operator_anywhere(user)

    TenantMembership.objects.create(user=user, tenant=tenant_b, role=Role.OPERATOR)
    TenantMembership.objects.filter(user=user, tenant=tenant_a).delete()

    assert (access.can_see(user, tenant_a), access.can_act(user, tenant_b)) == (False, True)
    assert access.visible_tenant_ids(user) == [tenant_b.pk]
    assert list(Tenant.objects.operable_by(user)) == [tenant_b]


def tenant_filter(response):
    return next(f for f in response.context["cl"].filter_specs if f.title == "tenant")


def test_tenant_filter_is_a_box_past_fifty_tenants(client, operator_of_a, tenant_a, tenant_b):
    extra = TenantFactory.create_batch(ScopedTenantFilter.MAX_LINKS, name="Gym Nova")
    TenantMembership.objects.bulk_create(
        TenantMembership(user=operator_of_a, tenant=t, role=Role.VIEWER) for t in extra
    )

    page = client.get(reverse(CHANGELIST), {"status__exact": "ERROR", "q": "ben"})
    by_id = client.get(reverse(CHANGELIST), {"tenant": tenant_a.pk})
    by_name = client.get(reverse(CHANGELIST), {"tenant": "salon au"})
    other = client.get(reverse(CHANGELIST), {"tenant": tenant_b.pk})
    other_name = client.get(reverse(CHANGELIST), {"tenant": "Studio"})

    assert tenant_filter(page).lookup_choices == []
    html = page.content.decode()
    assert 'placeholder="Tenant ID or name"' in html
    assert '<input type="hidden" name="status__exact" value="ERROR">' in html
    assert '<input type="hidden" name="q" value="ben">' in html
    assert "Gym Nova" not in html
    assert by_id.context["cl"].result_count == 5
    assert '<li class="selected"><a href="#">Salon Aurora</a></li>' in by_id.content.decode()
    assert by_name.context["cl"].result_count == 5
    assert other.context["cl"].result_count == 0
    assert other_name.context["cl"].result_count == 0
    assert "Studio Brisa" not in other.content.decode()


def test_tenant_filter_lists_few_tenants_as_links(admin_client, tenant_a, tenant_b):
    response = admin_client.get(reverse(CHANGELIST), {"tenant": tenant_b.pk})

    assert [name for _, name in tenant_filter(response).lookup_choices] == [
        "Salon Aurora",
        "Studio Brisa",
    ]
    assert {row.schedule.name for row in response.context["cl"].result_list} == {"Farah Haddad"}
    assert (
        admin_client.get(reverse(CHANGELIST), {"tenant": "Studio"}).context["cl"].result_count == 0
    )


# --- Tenant B stays out of sight and reach ----------------------------------------------


def test_other_tenant_is_not_listed_filtered_or_searched(client, operator_of_a, tenant_b):
    for query in ["", f"?tenant={tenant_b.pk}", "?q=farah", "?q=Studio+Brisa", "?removed=all"]:
        response = client.get(f"{reverse(CHANGELIST)}{query}")
        assert response.status_code == 200, query
        assert "farah@brisa.test" not in response.content.decode(), query
        assert "Farah" not in {r.schedule.name for r in response.context["cl"].result_list}
    tenant_choices = client.get(reverse(CHANGELIST)).context["cl"].filter_specs[0].lookup_choices
    assert [name for _, name in tenant_choices] == ["Salon Aurora"]


def test_other_tenants_pages_are_not_found(client, operator_of_a, tenant_b):
    farah = connection(tenant_b, "Farah Haddad")

    change = client.get(change_url(farah))
    history = client.get(reverse("admin:connections_connection_history", args=[farah.pk]))
    sync_get = client.get(sync_url(farah))
    sync_post = client.post(sync_url(farah), {"import_enabled": ""})

    assert (change.status_code, change["Location"]) == (302, reverse("admin:index"))
    assert (history.status_code, history["Location"]) == (302, reverse("admin:index"))
    assert sync_get.status_code == 404
    assert sync_post.status_code == 404


@pytest.mark.parametrize("action", ConnectionAdmin.actions)
def test_actions_on_other_tenants_rows_change_nothing(
    client, wix_sandbox, operator_of_a, tenant_b, brisa, action
):
    farah = connection(tenant_b, "Farah Haddad")
    before_wix = wix_sandbox.connection_json(brisa.id, brisa.connections["Farah Haddad"])
    calls = len(wix_sandbox.requests)

    response = post_action(client, action, [farah], confirm=action == "disconnect")

    assert response.status_code == 302
    assert messages_of(response) == [
        "No connection was changed: none of the selected ones is yours to act on."
    ]
    assert wix_sandbox.connection_json(brisa.id, brisa.connections["Farah Haddad"]) == before_wix
    assert len(wix_sandbox.requests) == calls
    assert Connection.objects.get(pk=farah.pk).raw == farah.raw
    assert not AuditEvent.objects.exists()


def test_viewer_is_offered_no_actions_and_a_forged_action_does_nothing(
    client, wix_sandbox, viewer_of_a, tenant_a, aurora
):
    anna = connection(tenant_a, "Anna Lee")
    page = client.get(reverse(CHANGELIST))
    calls = len(wix_sandbox.requests)

    assert page.context["action_form"] is None
    for action in ["disconnect", "enable_export", "refresh", "reconnect_link"]:
        response = post_action(client, action, [anna], confirm=action == "disconnect")
        assert response.status_code == 200
    assert wix_status(wix_sandbox, aurora, "Anna Lee") == "SYNCED"
    assert len(wix_sandbox.requests) == calls
    assert not AuditEvent.objects.exists()


def test_viewer_cannot_open_sync_settings(client, viewer_of_a, tenant_a):
    anna = connection(tenant_a, "Anna Lee")

    assert client.get(sync_url(anna)).status_code == 403
    assert client.post(sync_url(anna), {"import_enabled": "on"}).status_code == 403
    assert "Sync settings</a>" not in client.get(change_url(anna)).content.decode()


def test_selection_across_tenants_acts_only_where_operator(
    client, wix_sandbox, tenant_a, tenant_b, aurora, brisa
):
    client.force_login(staff_user("mixed", operator_of=(tenant_a,), viewer_of=(tenant_b,)))
    anna, farah = connection(tenant_a, "Anna Lee"), connection(tenant_b, "Farah Haddad")

    response = post_action(client, "disable_export", [anna, farah])

    assert messages_of(response) == [
        "1 selected item(s) belong to tenants you may only view; left unchanged.",
        f"{ANNA}: export is now off.",
    ]
    assert wix_sync(wix_sandbox, aurora, "Anna Lee")["syncToCalendar"]["enabled"] is False
    assert wix_sync(wix_sandbox, brisa, "Farah Haddad")["syncToCalendar"]["enabled"] is True


def test_non_staff_is_sent_to_login(client, django_user_model, tenant_a):
    anna = connection(tenant_a, "Anna Lee")
    client.force_login(django_user_model.objects.create_user("outsider"))

    for url in [reverse(CHANGELIST), change_url(anna), sync_url(anna)]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


def test_staff_without_tenants_sees_nothing(client, tenant_a):
    anna = connection(tenant_a, "Anna Lee")
    client.force_login(staff_user("newcomer"))

    assert client.get(reverse(CHANGELIST)).status_code == 403
    assert client.get(sync_url(anna)).status_code == 404


# --- Disconnect -------------------------------------------------------------------------


def test_disconnect_asks_first_then_disconnects(
    client, wix_sandbox, operator_of_a, tenant_a, aurora
):
    anna, ben = connection(tenant_a, "Anna Lee"), connection(tenant_a, "Ben Okafor")

    asked = post_action(client, "disconnect", [anna, ben])

    assert asked.status_code == 200
    assert asked.templates[0].name == "admin/connections/connection/disconnect_confirmation.html"
    html = asked.content.decode()
    assert "Wix deletes the bookings it exported to the external calendar" in html
    assert "stops importing that calendar&#x27;s events" in html
    assert f"{ANNA} · anna@aurora.test · Synced" in html
    assert f"{BEN} · ben@aurora.test · Error" in html
    assert 'value="Confirm: disconnect"' in html
    assert f'href="{reverse(CHANGELIST)}" class="button cancel-link">Cancel</a>' in html
    assert wix_status(wix_sandbox, aurora, "Anna Lee") == "SYNCED"

    done = post_action(client, "disconnect", [anna, ben], confirm=True)

    assert done.status_code == 302
    # Newest first, as listed.
    assert messages_of(done) == [
        f"{BEN}: disconnected; Wix shows it as Disconnected.",
        f"{ANNA}: disconnected; Wix shows it as Disconnected.",
    ]
    assert wix_status(wix_sandbox, aurora, "Anna Lee") == "DISCONNECTED"
    assert wix_status(wix_sandbox, aurora, "Ben Okafor") == "DISCONNECTED"
    assert connection(tenant_a, "Anna Lee").status == "DISCONNECTED"
    assert AuditEvent.objects.filter(action="disconnect", outcome="ok").count() == 2


def test_disconnect_of_one_wix_already_disconnected_is_done(
    client, wix_sandbox, operator_of_a, tenant_a, aurora
):
    wix_sandbox.disconnect_on_wix(aurora.id, aurora.connections["Anna Lee"])

    response = post_action(client, "disconnect", [connection(tenant_a, "Anna Lee")], confirm=True)

    assert messages_of(response) == [f"{ANNA}: disconnected; Wix shows it as Disconnected."]
    assert connection(tenant_a, "Anna Lee").status == "DISCONNECTED"


def test_disconnect_failure_is_a_message_per_connection(
    client, wix_sandbox, operator_of_a, tenant_a, aurora
):
    wix_sandbox.faults(aurora.id).server_error(times=1, status=500)
    anna, ben = connection(tenant_a, "Anna Lee"), connection(tenant_a, "Ben Okafor")

    response = post_action(client, "disconnect", [anna, ben], confirm=True)

    assert response.status_code == 302
    assert messages_of(response) == [
        f"{BEN}: not disconnected. {WIX_500}",
        f"{ANNA}: disconnected; Wix shows it as Disconnected.",
    ]
    assert wix_status(wix_sandbox, aurora, "Ben Okafor") == "ERROR"
    assert connection(tenant_a, "Ben Okafor").status == "ERROR"
    assert AuditEvent.objects.get(action="disconnect", outcome="failed").error_code == "INTERNAL"


def test_too_many_rows_are_refused(
    client, wix_sandbox, operator_of_a, tenant_a, aurora, monkeypatch
):
    from connections.admin import connection_actions as connection_admin

    monkeypatch.setattr(connection_admin, "MAX_ACTION_ROWS", 2)
    rows = list(Connection.objects.filter(tenant=tenant_a)[:3])

    response = post_action(client, "refresh", rows)

    assert messages_of(response) == [
        "Select at most 2 connections at a time; each one is a call to Wix. Nothing was changed."
    ]


# --- Import and export ------------------------------------------------------------------


def test_turn_import_and_export_off_and_on(client, wix_sandbox, operator_of_a, tenant_a, aurora):
    anna = connection(tenant_a, "Anna Lee")

    off = post_action(client, "disable_import", [anna])
    assert messages_of(off) == [f"{ANNA}: import is now off."]
    assert wix_sync(wix_sandbox, aurora, "Anna Lee") == {
        "listEventFromCalendars": {"enabled": False, "primaryCalendar": {}},
        "syncToCalendar": {"enabled": True, "dedicatedCalendar": {}},
    }

    on = post_action(client, "enable_import", [anna])
    assert messages_of(on) == [f"{ANNA}: import is now on, from the primary calendar."]

    export_off = post_action(client, "disable_export", [anna])
    assert messages_of(export_off) == [f"{ANNA}: export is now off."]
    export_on = post_action(client, "enable_export", [anna])
    assert messages_of(export_on) == [f"{ANNA}: export is now on, to a dedicated calendar."]
    assert wix_sync(wix_sandbox, aurora, "Anna Lee") == {
        "listEventFromCalendars": {"enabled": True, "primaryCalendar": {}},
        "syncToCalendar": {"enabled": True, "dedicatedCalendar": {}},
    }
    row = connection(tenant_a, "Anna Lee")
    assert (row.import_enabled, row.export_enabled, row.export_mode) == (True, True, "DEDICATED")


def test_export_where_the_provider_cannot(client, wix_sandbox, operator_of_a, tenant_a, aurora):
    dana, chloe = connection(tenant_a, "Dana Wu"), connection(tenant_a, "Chloe Martin")
    anna = connection(tenant_a, "Anna Lee")
    calls = len(wix_sandbox.requests)

    response = post_action(client, "enable_export", [anna, chloe, dana])

    assert messages_of(response) == [
        f"{DANA}: export not changed. Zoho cannot export bookings.",
        f"{CHLOE}: export not changed. Apple iCal does not allow changing sync settings.",
        f"{ANNA}: export is now on, to a dedicated calendar.",
    ]
    assert len(wix_sandbox.requests) == calls + 1
    assert wix_sync(wix_sandbox, aurora, "Dana Wu")["syncToCalendar"]["enabled"] is False


def test_provider_refusal_from_wix_is_shown(client, wix_sandbox, operator_of_a, tenant_a, aurora):
    """Wix refuses with NOT_SUPPORTED_BY_PROVIDER when the provider changed since the refresh."""
    google = wix_sandbox.site(aurora.id).providers["GOOGLE"]
    wix_sandbox.site(aurora.id).provider_records[google].update_sync_config = False

    response = post_action(client, "disable_import", [connection(tenant_a, "Anna Lee")])

    assert messages_of(response) == [
        f"{ANNA}: import not changed. Google doesn't allow sync changes "
        "(Wix: NOT_SUPPORTED_BY_PROVIDER)"
    ]
    assert connection(tenant_a, "Anna Lee").import_enabled is True


def test_import_change_with_wix_down(client, wix_sandbox, operator_of_a, tenant_a, aurora):
    wix_sandbox.faults(aurora.id).server_error(times=3, status=503)

    response = post_action(client, "disable_import", [connection(tenant_a, "Anna Lee")])

    assert messages_of(response) == [f"{ANNA}: import not changed. {WIX_503}"]
    assert wix_sync(wix_sandbox, aurora, "Anna Lee")["listEventFromCalendars"]["enabled"] is True


# --- Refresh ----------------------------------------------------------------------------


def test_refresh_fetches_each_connection(client, wix_sandbox, operator_of_a, tenant_a, aurora):
    wix_sandbox.set_connection_error(
        aurora.id, aurora.connections["Anna Lee"], "EXTERNAL_CALENDAR_DELETED"
    )
    wix_sandbox.remove_connection(aurora.id, aurora.connections["Dana Wu"])
    anna, dana = connection(tenant_a, "Anna Lee"), connection(tenant_a, "Dana Wu")

    response = post_action(client, "refresh", [anna, dana])

    assert messages_of(response) == [
        f"{DANA}: not refreshed. Connection {dana.wix_id} not found (Wix: NOT_FOUND)",
        f"{ANNA}: refreshed from Wix; status Error.",
    ]
    row = connection(tenant_a, "Anna Lee")
    assert (row.status, row.error_reason) == ("ERROR", "EXTERNAL_CALENDAR_DELETED")
    assert row.changes.filter(field="status", new_value="ERROR").exists()


def test_refresh_with_wix_down(client, wix_sandbox, operator_of_a, tenant_a, aurora):
    wix_sandbox.faults(aurora.id).server_error(times=3, status=503)

    response = post_action(client, "refresh", [connection(tenant_a, "Anna Lee")])

    assert messages_of(response) == [f"{ANNA}: not refreshed. {WIX_503}"]


# --- Reconnect links --------------------------------------------------------------------


def test_reconnect_link_for_broken_connections(
    client, wix_sandbox, operator_of_a, tenant_a, aurora
):
    rows = [connection(tenant_a, name) for name in ["Anna Lee", "Ben Okafor", "Diego Ruiz"]]

    response = post_action(client, "reconnect_link", rows)

    request = ConnectRequest.objects.get()
    assert (request.schedule.name, request.provider.name) == ("Ben Okafor", "Microsoft")
    shown = client.get(response["Location"]).content.decode()
    assert f'<a href="{request.oauth_url}">{request.oauth_url}</a>' in shown
    assert messages_of(response) == [
        f"{DIEGO}: Apple iCal connects with an email and password, not a link; use the "
        f'<a href="/admin/tenants/tenant/{tenant_a.pk}/connect/">Connect page of Salon Aurora</a>.',
        f"{BEN}: send this link to the calendar owner to reconnect (valid for 24 hours): "
        f'<a href="{request.oauth_url}">{request.oauth_url}</a>',
        f"{ANNA}: not broken (Synced); nothing to reconnect.",
    ]
    # The owner consents; Wix sends them back to the portal's return page.
    back = urlsplit(consent(request.oauth_url, "approve"))
    assert (back.scheme, back.netloc) == ("http", "testserver")
    returned = client.get(f"{back.path}?{back.query}")
    assert returned.status_code == 200
    assert "Calendar connected" in returned.content.decode()
    assert parse_qs(back.query)["connectionId"]


def test_reconnect_link_when_wix_fails(client, wix_sandbox, operator_of_a, tenant_a, aurora):
    wix_sandbox.faults(aurora.id).server_error(times=1, status=500)

    response = post_action(client, "reconnect_link", [connection(tenant_a, "Ben Okafor")])

    assert messages_of(response) == [f"{BEN}: no link. {WIX_500}"]
    assert not ConnectRequest.objects.exists()


def test_reconnect_link_refused_by_provider(client, wix_sandbox, operator_of_a, tenant_a, aurora):
    microsoft = wix_sandbox.site(aurora.id).providers["MICROSOFT"]
    wix_sandbox.site(aurora.id).provider_records[microsoft].connect_methods = ("CREDENTIALS",)

    response = post_action(client, "reconnect_link", [connection(tenant_a, "Ben Okafor")])

    assert messages_of(response) == [
        f"{BEN}: no link. Microsoft doesn't connect by OAuth (Wix: NOT_SUPPORTED_BY_PROVIDER)"
    ]


# --- The change page --------------------------------------------------------------------


def test_change_page_is_read_only_with_history(
    client, wix_sandbox, operator_of_a, tenant_a, aurora
):
    post_action(client, "disable_import", [connection(tenant_a, "Anna Lee")])
    anna = connection(tenant_a, "Anna Lee")

    response = client.get(change_url(anna))

    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["adminform"].form.fields == {}
    for text in [
        "Who and what",
        "Sync settings</h2>",
        "Wix IDs",
        anna.wix_id,
        '<pre class="portal-json">',
        "&quot;externalAccountEmail&quot;: &quot;anna@aurora.test&quot;",
        "Change history",
        "An action in the portal",
        "Appeared",
        f'href="{sync_url(anna)}" class="portal-sync-link">Sync settings</a>',
    ]:
        assert text in html, text
    changes = [(c.kind, c.field, summary) for c, summary in response.context["changes"]]
    assert changes == [
        (
            "changed",
            "sync_config",
            "import on, from the primary calendar; export on, to a dedicated calendar → "
            "import off; export on, to a dedicated calendar",
        ),
        ("appeared", "", "as SYNCED"),
    ]
    assert 'name="_save"' not in html


def test_mirror_rows_cannot_be_added_changed_or_deleted(client, operator_of_a, tenant_a):
    anna = connection(tenant_a, "Anna Lee")

    assert client.get(reverse("admin:connections_connection_add")).status_code == 403
    assert client.post(change_url(anna), {"external_account_email": "x@y.z"}).status_code == 403
    delete = reverse("admin:connections_connection_delete", args=[anna.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert connection(tenant_a, "Anna Lee").external_account_email == "anna@aurora.test"


# --- Sync settings ----------------------------------------------------------------------


def test_sync_settings_choose_calendars(client, wix_sandbox, operator_of_a, tenant_a, aurora):
    anna = connection(tenant_a, "Anna Lee")

    page = client.get(sync_url(anna))

    assert page.status_code == 200
    form = page.context["form"]
    calendars = form.fields["calendars"].choices
    assert [name for _, name in calendars] == ["Primary", "Work", "Family"]
    assert form.fields["import_mode"].choices == [
        ("PRIMARY", "The primary calendar"),
        ("CALENDARS", "The calendars chosen below"),
    ]
    assert form.fields["export_mode"].choices == [
        ("DEDICATED", "A dedicated calendar that Wix creates")
    ]
    html = page.content.decode()
    assert "Now: import is on, from the primary calendar; export is on, to a dedicated" in html

    saved = client.post(
        sync_url(anna),
        {
            "import_enabled": "on",
            "import_mode": "CALENDARS",
            "calendars": [calendars[1][0], calendars[2][0]],
            "export_mode": "DEDICATED",
        },
    )

    assert (saved.status_code, saved["Location"]) == (302, change_url(anna))
    assert messages_of(saved) == [
        f"{ANNA}: sync settings saved. Import is on, from Work, Family; export is off."
    ]
    assert wix_sync(wix_sandbox, aurora, "Anna Lee") == {
        "listEventFromCalendars": {
            "enabled": True,
            "calendars": {
                "calendars": [
                    {"id": calendars[1][0], "name": "Work"},
                    {"id": calendars[2][0], "name": "Family"},
                ]
            },
        },
        "syncToCalendar": {"enabled": False, "dedicatedCalendar": {}},
    }
    row = connection(tenant_a, "Anna Lee")
    assert (row.import_mode, row.export_enabled) == ("CALENDARS", False)
    assert AuditEvent.objects.get(action="set_sync_config").parameters == {
        "syncConfig": {
            "listEventFromCalendars": {
                "enabled": True,
                "calendars": {
                    "calendars": [
                        {"id": calendars[1][0], "name": "Work"},
                        {"id": calendars[2][0], "name": "Family"},
                    ]
                },
            },
            "syncToCalendar": {"enabled": False, "dedicatedCalendar": {}},
        }
    }


def test_sync_settings_offer_only_what_the_provider_can(
    client, wix_sandbox, operator_of_a, tenant_a
):
    ben, dana = connection(tenant_a, "Ben Okafor"), connection(tenant_a, "Dana Wu")

    microsoft = client.get(sync_url(ben)).context["form"]
    wix_calls = len(wix_sandbox.requests)
    zoho_page = client.get(sync_url(dana))

    assert microsoft.fields["export_mode"].choices == [("PRIMARY", "The primary calendar")]
    zoho = zoho_page.context["form"]
    assert set(zoho.fields) == {"import_enabled", "import_mode"}
    assert zoho.fields["import_mode"].choices == [("PRIMARY", "The primary calendar")]
    assert "Zoho cannot export bookings." in zoho_page.content.decode()
    assert len(wix_sandbox.requests) == wix_calls  # no List Calendars for Zoho


def test_sync_settings_refuse_a_forged_mode(client, wix_sandbox, operator_of_a, tenant_a, aurora):
    ben = connection(tenant_a, "Ben Okafor")
    calls = len(wix_sandbox.requests)

    response = client.post(
        sync_url(ben), {"export_enabled": "on", "export_mode": "DEDICATED", "import_mode": "X"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "export_mode": ["Select a valid choice. DEDICATED is not one of the available choices."],
        "import_mode": ["Select a valid choice. X is not one of the available choices."],
    }
    assert len(wix_sandbox.requests) == calls + 1  # List Calendars only
    assert not AuditEvent.objects.exists()


def test_sync_settings_need_a_calendar(client, operator_of_a, tenant_a):
    response = client.post(
        sync_url(connection(tenant_a, "Anna Lee")),
        {"import_enabled": "on", "import_mode": "CALENDARS", "export_mode": "DEDICATED"},
    )

    assert response.context["form"].errors == {
        "calendars": ["Choose at least one calendar to import from."]
    }


def test_sync_settings_of_a_provider_that_allows_no_change(
    client, wix_sandbox, operator_of_a, tenant_a
):
    chloe = connection(tenant_a, "Chloe Martin")
    calls = len(wix_sandbox.requests)

    page = client.get(sync_url(chloe))
    posted = client.post(sync_url(chloe), {"import_enabled": ""})

    assert page.status_code == 200
    assert page.context["form"] is None
    assert (
        "Apple iCal does not allow changing sync settings; the connection keeps the settings "
        "it was made with." in page.content.decode()
    )
    assert posted.status_code == 200
    assert messages_of(posted) == ["Nothing was changed."]
    assert len(wix_sandbox.requests) == calls


def test_sync_settings_when_calendars_cannot_be_loaded(
    client, wix_sandbox, operator_of_a, tenant_a, aurora
):
    anna = connection(tenant_a, "Anna Lee")
    wix_sandbox.faults(aurora.id).server_error(times=1, status=500)

    page = client.get(sync_url(anna))

    assert page.status_code == 200
    assert messages_of(page) == [
        f"Could not load the calendars from Wix: {WIX_500} "
        "Only the calendars already chosen can be kept."
    ]
    assert "calendars" not in page.context["form"].fields
    saved = client.post(
        sync_url(anna), {"import_enabled": "on", "import_mode": "PRIMARY", "export_mode": ""}
    )
    assert saved.status_code == 302
    assert wix_sync(wix_sandbox, aurora, "Anna Lee")["syncToCalendar"] == {
        "enabled": False,
        "dedicatedCalendar": {},
    }


def test_sync_settings_of_a_disconnected_connection(
    client, wix_sandbox, operator_of_a, tenant_a, aurora
):
    wix_sandbox.disconnect_on_wix(aurora.id, aurora.connections["Anna Lee"])
    anna = connection(tenant_a, "Anna Lee")

    page = client.get(sync_url(anna))
    posted = client.post(
        sync_url(anna), {"import_enabled": "", "import_mode": "PRIMARY", "export_mode": ""}
    )

    not_connected = "The connection is disconnected (Wix: CONNECTION_NOT_CONNECTED)"
    assert messages_of(page) == [
        f"Could not load the calendars from Wix: {not_connected} "
        "Only the calendars already chosen can be kept."
    ]
    assert posted.status_code == 200
    assert messages_of(posted)[-1] == f"Wix did not accept the sync settings: {not_connected}"
    assert connection(tenant_a, "Anna Lee").import_enabled is True


def test_sync_settings_when_wix_fails_on_submit(
    client, wix_sandbox, operator_of_a, tenant_a, aurora
):
    dana = connection(tenant_a, "Dana Wu")
    wix_sandbox.faults(aurora.id).server_error(times=3, status=503)

    response = client.post(sync_url(dana), {"import_enabled": "", "import_mode": "PRIMARY"})

    assert response.status_code == 200
    assert messages_of(response) == [f"Wix did not accept the sync settings: {WIX_503}"]
    assert response.context["form"].is_bound
    assert wix_sync(wix_sandbox, aurora, "Dana Wu")["listEventFromCalendars"]["enabled"] is True


def test_sync_settings_refused_by_wix_provider(
    client, wix_sandbox, operator_of_a, tenant_a, aurora
):
    zoho = wix_sandbox.site(aurora.id).providers["OTHER"]
    wix_sandbox.site(aurora.id).provider_records[zoho].list_event_from_calendars = "NOT_SUPPORTED"

    response = client.post(
        sync_url(connection(tenant_a, "Dana Wu")),
        {"import_enabled": "on", "import_mode": "PRIMARY"},
    )

    assert response.status_code == 200
    message = messages_of(response)[0]
    assert message.startswith("Wix did not accept the sync settings: Provider can't import")
    assert message.endswith("(Wix: NOT_SUPPORTED_BY_PROVIDER)")
