"""The sandbox speaks docs/wix-contract.md: shapes, auth, endpoints and their documented errors,
over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from wixapi.sandbox import BOOKINGS_APP_ID, Sandbox, serve

EC = "/bookings/v2/external-calendars"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CALENDAR_TYPES = {"UNDEFINED", "GOOGLE", "I_CAL", "OUTLOOK", "OFFICE_365", "MICROSOFT", "OTHER"}
STATUSES = {"UNDEFINED", "CONNECTED", "SYNC_IN_PROGRESS", "SYNCED", "DISCONNECTED", "ERROR"}
ERROR_REASONS = {
    "UNDEFINED",
    "TOKEN_REVOKED",
    "EXTERNAL_CALENDAR_CREATION_FAILED",
    "EXTERNAL_CALENDAR_DELETED",
}
CONNECTION_KEYS = {"id", "providerId", "calendarType", "scheduleId", "userId", "appId", "status"}
OPTIONAL_CONNECTION_KEYS = {"externalAccountEmail", "errorReason", "syncConfig"}


@dataclass
class World:
    sb: Sandbox
    url: str
    site_id: str
    key: str
    anna: str  # schedule ids
    ben: str
    chloe: str
    google: str  # connection ids
    microsoft: str
    ical: str
    revoked: str
    gone: str

    def call(self, method, path, *, site=None, key=None, **kwargs) -> requests.Response:
        headers = {"Authorization": self.key if key is None else key}
        headers["wix-site-id"] = site or self.site_id
        headers.update(kwargs.pop("headers", {}))
        return requests.request(method, self.url + path, headers=headers, timeout=5, **kwargs)

    def provider(self, calendar_type: str) -> str:
        return self.sb.site(self.site_id).providers[calendar_type]


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    sandbox = Sandbox(seed=7)
    server = serve(sandbox)
    try:
        yield sandbox
    finally:
        server.stop()


@pytest.fixture
def world(sb: Sandbox) -> World:
    site = sb.add_site(name="Salon Aurora")
    anna = sb.add_schedule(site.id, name="Anna Lee")
    ben = sb.add_schedule(site.id, name="Ben Okafor")
    chloe = sb.add_schedule(site.id, name="Chloe Martin")
    add = sb.add_connection
    return World(
        sb=sb,
        url=sb.url,
        site_id=site.id,
        key=sb.create_api_key(site.account_id),
        anna=anna,
        ben=ben,
        chloe=chloe,
        google=add(site.id, anna, "GOOGLE", import_mode="CALENDARS", export_mode="DEDICATED"),
        microsoft=add(site.id, ben, "MICROSOFT", "SYNC_IN_PROGRESS", export_mode="PRIMARY"),
        ical=add(site.id, chloe, "I_CAL", "CONNECTED", email=None, export_mode=None),
        revoked=add(site.id, ben, "GOOGLE", "ERROR", error_reason="TOKEN_REVOKED"),
        gone=add(site.id, chloe, "MICROSOFT", "DISCONNECTED"),
    )


def app_error(response: requests.Response, status: int, code: str) -> dict:
    """Assert the docs/wix-contract.md §3 application error shape and return the body."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message", "details"}
    assert isinstance(body["message"], str)
    error = body["details"]["applicationError"]
    assert set(error) == {"code", "description", "data"}
    assert error["code"] == code
    return body


def field_violations(response: requests.Response) -> list[str]:
    """Assert a docs/wix-contract.md §3 validation error and return the violated fields."""
    assert response.status_code == 400, response.text
    violations = response.json()["details"]["validationError"]["fieldViolations"]
    for violation in violations:
        assert {"field", "description", "violatedRule"} <= set(violation)
    return [v["field"] for v in violations]


def check_connection(conn: dict) -> None:
    """Check one connection against docs/wix-contract.md §1 Connection, key by key."""
    assert CONNECTION_KEYS <= set(conn) <= CONNECTION_KEYS | OPTIONAL_CONNECTION_KEYS
    assert re.fullmatch(r"[A-Za-z0-9]{150,200}", conn["id"])
    for key in ("providerId", "scheduleId", "userId", "appId"):
        assert GUID.match(conn[key]), key
    assert conn["calendarType"] in CALENDAR_TYPES
    assert conn["status"] in STATUSES
    if conn["status"] == "ERROR":
        assert conn["errorReason"] in ERROR_REASONS
    else:
        assert "errorReason" not in conn
    if "externalAccountEmail" in conn:
        assert "@" in conn["externalAccountEmail"]
    sync = conn["syncConfig"]
    assert set(sync) == {"listEventFromCalendars", "syncToCalendar"}
    imported, exported = sync["listEventFromCalendars"], sync["syncToCalendar"]
    assert isinstance(imported["enabled"], bool) and isinstance(exported["enabled"], bool)
    # Exactly one of the one-of keys; a disabled sub-object may name none.
    assert set(imported) in ({"enabled", "primaryCalendar"}, {"enabled", "calendars"}) or (
        imported == {"enabled": False}
    )
    if "primaryCalendar" in imported:
        assert imported["primaryCalendar"] == {}
    else:
        assert set(imported["calendars"]) == {"calendars"}
        for calendar in imported["calendars"]["calendars"]:
            assert set(calendar) == {"id", "name"}
    assert set(exported) in ({"enabled", "primaryCalendar"}, {"enabled", "dedicatedCalendar"}) or (
        exported == {"enabled": False}
    )
    assert exported.get("primaryCalendar", {}) == {} and exported.get("dedicatedCalendar", {}) == {}


# shapes -----------------------------------------------------------------------------------
def test_connection_json_matches_spec(world: World) -> None:
    response = world.call("GET", f"{EC}/connections")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"connections"}  # failedProviderIds only with partialFailure=true
    by_id = {c["id"]: c for c in body["connections"]}
    assert set(by_id) == {world.google, world.microsoft, world.ical, world.revoked, world.gone}
    for conn in body["connections"]:
        check_connection(conn)
        single = world.call("GET", f"{EC}/connections/{conn['id']}")
        assert single.json() == {"connection": conn}

    google = by_id[world.google]
    assert google["calendarType"] == "GOOGLE"
    assert google["providerId"] == world.provider("GOOGLE")
    assert google["scheduleId"] == world.anna
    assert google["appId"] == BOOKINGS_APP_ID
    assert google["externalAccountEmail"] == "staff@example.com"
    assert google["status"] == "SYNCED"
    calendars = google["syncConfig"]["listEventFromCalendars"]["calendars"]["calendars"]
    assert [c["name"] for c in calendars] == ["Primary", "Work"]
    assert google["syncConfig"]["syncToCalendar"] == {"enabled": True, "dedicatedCalendar": {}}
    microsoft = by_id[world.microsoft]["syncConfig"]
    assert microsoft["listEventFromCalendars"] == {"enabled": True, "primaryCalendar": {}}
    assert microsoft["syncToCalendar"] == {"enabled": True, "primaryCalendar": {}}
    assert by_id[world.ical]["syncConfig"]["syncToCalendar"]["enabled"] is False
    assert "externalAccountEmail" not in by_id[world.ical]
    assert by_id[world.revoked]["errorReason"] == "TOKEN_REVOKED"
    assert by_id[world.gone]["status"] == "DISCONNECTED"
    assert world.sb.connection_json(world.site_id, world.google) == google


def test_providers_match_spec_and_capabilities(world: World) -> None:
    response = world.call("GET", f"{EC}/providers")
    providers = {p["calendarType"]: p for p in response.json()["providers"]}
    assert set(providers) == {"GOOGLE", "MICROSOFT", "I_CAL"}
    for provider in providers.values():
        assert set(provider) == {"id", "name", "calendarType", "features"}
        assert GUID.match(provider["id"])
        assert set(provider["features"]) == {
            "connectMethods",
            "updateSyncConfig",
            "listEventFromCalendars",
            "syncToCalendar",
        }
    assert providers["GOOGLE"]["features"] == {
        "connectMethods": ["OAUTH"],
        "updateSyncConfig": True,
        "listEventFromCalendars": "SPECIFIC_CALENDARS",
        "syncToCalendar": "DEDICATED_CALENDAR",
    }
    assert providers["MICROSOFT"]["features"]["syncToCalendar"] == "PRIMARY_CALENDAR_ONLY"
    assert providers["I_CAL"]["features"] == {
        "connectMethods": ["CREDENTIALS"],
        "updateSyncConfig": False,
        "listEventFromCalendars": "PRIMARY_CALENDAR_ONLY",
        "syncToCalendar": "NOT_SUPPORTED",
    }


def test_every_response_carries_a_unique_request_id(world: World) -> None:
    ids = {
        world.call("GET", f"{EC}/providers").headers["x-wix-request-id"],
        world.call("GET", f"{EC}/providers").headers["x-wix-request-id"],
        world.call("GET", f"{EC}/providers", key="nope").headers["x-wix-request-id"],
        world.call("GET", "/no/such/path").headers["x-wix-request-id"],
    }
    assert len(ids) == 4


# auth and isolation -----------------------------------------------------------------------
def test_missing_or_unknown_key_is_401(world: World) -> None:
    response = requests.get(world.url + f"{EC}/providers", timeout=5)
    app_error(response, 401, "UNAUTHENTICATED")
    app_error(world.call("GET", f"{EC}/providers", key="IST.unknown"), 401, "UNAUTHENTICATED")


def test_site_call_without_site_header_is_400(world: World) -> None:
    response = requests.get(
        world.url + f"{EC}/providers", headers={"Authorization": world.key}, timeout=5
    )
    assert field_violations(response) == ["wix-site-id"]


def test_key_of_another_account_is_403(world: World) -> None:
    other = world.sb.add_site(name="Elsewhere")
    app_error(world.call("GET", f"{EC}/connections", site=other.id), 403, "PERMISSION_DENIED")
    unknown_site = "00000000-0000-4000-8000-000000000000"
    app_error(world.call("GET", f"{EC}/providers", site=unknown_site), 403, "PERMISSION_DENIED")


def test_a_site_sees_only_its_own_objects(world: World) -> None:
    sb = world.sb
    sister = sb.add_site(name="Sister", account_id=sb.site(world.site_id).account_id)
    sister_schedule = sb.add_schedule(sister.id, name="Zoe")
    sister_conn = sb.add_connection(sister.id, sister_schedule)

    app_error(world.call("GET", f"{EC}/connections/{sister_conn}"), 404, "NOT_FOUND")
    app_error(world.call("GET", f"{EC}/connections/{sister_conn}/calendars"), 404, "NOT_FOUND")
    app_error(world.call("POST", f"{EC}/connections/{sister_conn}/disconnect"), 404, "NOT_FOUND")
    listed = world.call("GET", f"{EC}/connections", site=sister.id).json()["connections"]
    assert [c["id"] for c in listed] == [sister_conn]
    providers = world.call("GET", f"{EC}/providers", site=sister.id).json()["providers"]
    assert {p["id"] for p in providers}.isdisjoint(sb.site(world.site_id).providers.values())
    body = {
        "scheduleId": world.anna,
        "providerId": sister.providers["GOOGLE"],
        "redirectUrl": "https://p",
    }
    app_error(world.call("POST", f"{EC}/connections:connectByOAuth", json=body), 404, "NOT_FOUND")
    schedules = world.call("POST", "/calendar/v3/schedules/query", site=sister.id, json={})
    assert [s["id"] for s in schedules.json()["schedules"]] == [sister_schedule]


# Connect By OAuth and the consent page ------------------------------------------------------
def start_oauth(world: World, redirect: str = "https://portal.test/return?state=abc") -> str:
    body = {
        "scheduleId": world.anna,
        "providerId": world.provider("MICROSOFT"),
        "redirectUrl": redirect,
    }
    response = world.call("POST", f"{EC}/connections:connectByOAuth", json=body)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"oauthUrl"}
    return response.json()["oauthUrl"]


def test_connect_by_oauth_uses_the_colon_path_and_consent_approves(world: World) -> None:
    oauth_url = start_oauth(world)
    assert oauth_url.startswith(world.url + "/_sandbox/oauth/consent/")
    page = requests.get(oauth_url, timeout=5)
    assert page.status_code == 200
    assert "Microsoft" in page.text and "Anna Lee" in page.text
    assert 'value="anna.lee@example.com"' in page.text
    answer = requests.post(
        oauth_url,
        data={"action": "approve", "email": "anna@outlook.test"},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "portal.test", "/return")
    params = parse_qs(location.query)
    assert params["state"] == ["abc"]
    conn = world.call("GET", f"{EC}/connections/{params['connectionId'][0]}").json()["connection"]
    check_connection(conn)
    assert conn["status"] == "CONNECTED"
    assert conn["externalAccountEmail"] == "anna@outlook.test"
    assert conn["scheduleId"] == world.anna
    assert conn["calendarType"] == "MICROSOFT"


@pytest.mark.parametrize(
    ("action", "error"),
    [("refuse", "reject"), ("unsupported", "unsupported"), ("internal", "internal")],
)
def test_consent_failures_redirect_with_error(world: World, action: str, error: str) -> None:
    before = world.call("GET", f"{EC}/connections").json()["connections"]
    oauth_url = start_oauth(world)
    answer = requests.post(oauth_url, data={"action": action}, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    assert answer.headers["Location"] == f"https://portal.test/return?state=abc&error={error}"
    assert world.call("GET", f"{EC}/connections").json()["connections"] == before


def test_consent_request_is_used_once(world: World) -> None:
    oauth_url = start_oauth(world, "https://portal.test/return")
    first = requests.post(oauth_url + "?action=approve", allow_redirects=False, timeout=5)
    assert first.headers["Location"].startswith("https://portal.test/return?connectionId=")
    assert requests.get(oauth_url, timeout=5).status_code == 410
    assert requests.post(oauth_url, allow_redirects=False, timeout=5).status_code == 410


def test_connect_by_oauth_errors(world: World) -> None:
    path = f"{EC}/connections:connectByOAuth"
    ical = {
        "scheduleId": world.anna,
        "providerId": world.provider("I_CAL"),
        "redirectUrl": "https://p",
    }
    app_error(world.call("POST", path, json=ical), 428, "NOT_SUPPORTED_BY_PROVIDER")
    assert set(field_violations(world.call("POST", path, json={}))) == {
        "scheduleId",
        "providerId",
        "redirectUrl",
    }


# Connect By Credentials -------------------------------------------------------------------
def credentials(world: World, **overrides) -> dict:
    return {
        "scheduleId": world.anna,
        "providerId": world.provider("I_CAL"),
        "email": "anna@icloud.test",
        "password": "app-specific-password",
        **overrides,
    }


def test_connect_by_credentials(world: World) -> None:
    response = world.call("POST", f"{EC}/connections:connectByCredentials", json=credentials(world))
    assert response.status_code == 200
    conn = response.json()["connection"]
    check_connection(conn)
    assert conn["status"] == "CONNECTED"
    assert conn["externalAccountEmail"] == "anna@icloud.test"
    assert conn["calendarType"] == "I_CAL"
    stored = world.sb.connection(world.site_id, conn["id"])
    assert "app-specific-password" not in repr(vars(stored))


def test_connect_by_credentials_errors(world: World) -> None:
    path = f"{EC}/connections:connectByCredentials"
    wrong = credentials(world, password="wrong-password")
    body = app_error(world.call("POST", path, json=wrong), 401, "BAD_CREDENTIALS")
    assert body["message"] == "The email or password is wrong"
    google = credentials(world, providerId=world.provider("GOOGLE"))
    app_error(world.call("POST", path, json=google), 428, "NOT_SUPPORTED_BY_PROVIDER")
    assert field_violations(world.call("POST", path, json=credentials(world, password=""))) == [
        "password"
    ]
    world.sb.site(world.site_id).premium = False
    response = world.call("POST", path, json=credentials(world))
    app_error(response, 403, "PREMIUM_FEATURE_NOT_ENABLED")


# List Calendars ---------------------------------------------------------------------------
def test_list_calendars_is_stable(world: World) -> None:
    first = world.call("GET", f"{EC}/connections/{world.google}/calendars").json()
    second = world.call("GET", f"{EC}/connections/{world.google}/calendars").json()
    assert first == second
    assert [c["name"] for c in first["calendars"]] == ["Primary", "Work", "Family"]
    for calendar in first["calendars"]:
        assert set(calendar) == {"id", "name"}
        assert re.fullmatch(r"[a-z0-9]{10,40}", calendar["id"])


def test_list_calendars_errors(world: World) -> None:
    path = f"{EC}/connections/{{}}/calendars"
    gone = world.call("GET", path.format(world.gone))
    app_error(gone, 428, "CONNECTION_NOT_CONNECTED")
    ical = world.call("GET", path.format(world.ical))
    app_error(ical, 428, "NOT_SUPPORTED_BY_PROVIDER")
    world.sb.site(world.site_id).premium = False
    app_error(world.call("GET", path.format(world.google)), 403, "PREMIUM_FEATURE_NOT_ENABLED")


# Update Sync Config -----------------------------------------------------------------------
def patch_sync(world: World, conn_id: str, sync_config) -> requests.Response:
    body = {} if sync_config is None else {"syncConfig": sync_config}
    return world.call("PATCH", f"{EC}/connections/{conn_id}/sync-config", json=body)


def test_update_sync_config_replaces_the_whole_config(world: World) -> None:
    calendars = world.call("GET", f"{EC}/connections/{world.google}/calendars").json()["calendars"]
    chosen = [{"id": calendars[2]["id"]}]
    config = {"listEventFromCalendars": {"enabled": True, "calendars": {"calendars": chosen}}}
    response = patch_sync(world, world.google, config)
    assert response.status_code == 200, response.text
    conn = response.json()["connection"]
    check_connection(conn)
    assert conn["syncConfig"] == {
        "listEventFromCalendars": {
            "enabled": True,
            "calendars": {"calendars": [{"id": calendars[2]["id"], "name": "Family"}]},
        },
        # [U] replace semantics: the left-out export config is disabled.
        "syncToCalendar": {"enabled": False, "dedicatedCalendar": {}},
    }
    assert world.call("GET", f"{EC}/connections/{world.google}").json()["connection"] == conn
    off = {"listEventFromCalendars": {"enabled": False}, "syncToCalendar": {"enabled": False}}
    assert patch_sync(world, world.google, off).json()["connection"]["syncConfig"] == off


def test_update_sync_config_errors(world: World) -> None:
    both = {"listEventFromCalendars": {"enabled": True, "primaryCalendar": {}, "calendars": {}}}
    assert field_violations(patch_sync(world, world.google, both)) == [
        "syncConfig.listEventFromCalendars"
    ]
    assert field_violations(patch_sync(world, world.google, None)) == ["syncConfig"]
    unknown = {
        "listEventFromCalendars": {"enabled": True, "calendars": {"calendars": [{"id": "x"}]}}
    }
    assert field_violations(patch_sync(world, world.google, unknown)) == [
        "syncConfig.listEventFromCalendars.calendars.calendars"
    ]
    dedicated = {"syncToCalendar": {"enabled": True, "dedicatedCalendar": {}}}
    app_error(patch_sync(world, world.microsoft, dedicated), 428, "NOT_SUPPORTED_BY_PROVIDER")
    primary = {"listEventFromCalendars": {"enabled": True, "primaryCalendar": {}}}
    app_error(patch_sync(world, world.ical, primary), 428, "NOT_SUPPORTED_BY_PROVIDER")
    app_error(patch_sync(world, world.gone, primary), 428, "CONNECTION_NOT_CONNECTED")


# Disconnect and List Connections ----------------------------------------------------------
def test_disconnect_then_already_disconnected(world: World) -> None:
    path = f"{EC}/connections/{world.revoked}/disconnect"
    response = world.call("POST", path, json={"connectionId": world.revoked})
    assert response.status_code == 200
    conn = response.json()["connection"]
    assert conn["status"] == "DISCONNECTED"
    assert "errorReason" not in conn
    app_error(world.call("POST", path, json={}), 428, "CONNECTION_ALREADY_DISCONNECTED")


def test_list_connections_filters_by_repeated_schedule_ids(world: World) -> None:
    response = world.call(
        "GET", f"{EC}/connections", params={"scheduleIds": [world.anna, world.chloe]}
    )
    assert {c["id"] for c in response.json()["connections"]} == {
        world.google,
        world.ical,
        world.gone,
    }


def test_partial_failure(world: World) -> None:
    google = world.provider("GOOGLE")
    world.sb.faults(world.site_id).fail_provider(google)
    strict = world.call("GET", f"{EC}/connections")
    assert strict.status_code == 503
    partial = world.call("GET", f"{EC}/connections", params={"partialFailure": "true"}).json()
    assert partial["failedProviderIds"] == [google]
    assert {c["id"] for c in partial["connections"]} == {world.microsoft, world.ical, world.gone}
    only_google = {"partialFailure": "true", "scheduleIds": world.anna}
    assert world.call("GET", f"{EC}/connections", params=only_google).status_code == 503
    world.sb.faults(world.site_id).restore_provider(google)
    healthy = world.call("GET", f"{EC}/connections", params={"partialFailure": "true"}).json()
    assert healthy["failedProviderIds"] == []
    assert len(healthy["connections"]) == 5


def test_wix_side_changes_show_on_the_next_poll(world: World) -> None:
    sb, site = world.sb, world.site_id
    sb.set_connection_error(site, world.google, "EXTERNAL_CALENDAR_DELETED")
    conn = world.call("GET", f"{EC}/connections/{world.google}").json()["connection"]
    assert (conn["status"], conn["errorReason"]) == ("ERROR", "EXTERNAL_CALENDAR_DELETED")
    sb.disconnect_on_wix(site, world.microsoft)
    conn = world.call("GET", f"{EC}/connections/{world.microsoft}").json()["connection"]
    assert conn["status"] == "DISCONNECTED"
    off = {
        "listEventFromCalendars": {"enabled": False, "primaryCalendar": {}},
        "syncToCalendar": {"enabled": False, "primaryCalendar": {}},
    }
    sb.set_sync_config(site, world.ical, off)
    conn = world.call("GET", f"{EC}/connections/{world.ical}").json()["connection"]
    assert conn["syncConfig"] == off
    sb.remove_connection(site, world.revoked)
    app_error(world.call("GET", f"{EC}/connections/{world.revoked}"), 404, "NOT_FOUND")


def test_add_connection_refuses_what_the_provider_cannot_do(world: World) -> None:
    with pytest.raises(ValueError):
        world.sb.add_connection(world.site_id, world.anna, "I_CAL", export_mode="PRIMARY")
    with pytest.raises(ValueError):
        world.sb.add_connection(world.site_id, world.anna, "MICROSOFT", export_mode="DEDICATED")
