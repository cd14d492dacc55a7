"""The sandbox's events, queries with cursor paging, OAuth tokens, faults, control API, seeds."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from wixapi.sandbox import BOOKINGS_APP_ID, Sandbox, generate_fleet, seed_demo, serve
from wixapi.sandbox.__main__ import write_credentials

EC = "/bookings/v2/external-calendars"
WINTER = {"from": "2025-01-01T00:00:00Z", "to": "2025-03-01T00:00:00Z"}


@dataclass
class Site:
    sb: Sandbox
    url: str
    id: str
    key: str
    schedules: list[str]
    connections: list[str]

    def get(self, path, params=None, **headers) -> requests.Response:
        headers = {"Authorization": self.key, "wix-site-id": self.id, **headers}
        return requests.get(self.url + path, params=params, headers=headers, timeout=5)

    def post(self, path, body, **headers) -> requests.Response:
        headers = {"Authorization": self.key, "wix-site-id": self.id, **headers}
        return requests.post(self.url + path, json=body, headers=headers, timeout=5)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    sandbox = Sandbox(seed=11)
    server = serve(sandbox)
    try:
        yield sandbox
    finally:
        server.stop()


@pytest.fixture
def site(sb: Sandbox) -> Site:
    info = sb.add_site(name="Studio Brisa")
    names = ["Farah Haddad", "George Ito", "Hana Kim", "Ivan Petrov", "Julia Santos"]
    schedules = [sb.add_schedule(info.id, name=name) for name in names]
    connections = [
        sb.add_connection(info.id, schedules[0], "GOOGLE", import_mode="CALENDARS"),
        sb.add_connection(info.id, schedules[1], "MICROSOFT", "ERROR"),
        sb.add_connection(info.id, schedules[2], "GOOGLE", "DISCONNECTED"),
        sb.add_connection(info.id, schedules[3], "I_CAL", import_mode=None),
    ]
    return Site(sb, sb.url, info.id, sb.create_api_key(info.account_id), schedules, connections)


def all_events(site: Site, params: dict) -> list[dict]:
    events, cursor = [], None
    for _ in range(100):
        page_params = {**params, "cursorPaging.cursor": cursor} if cursor else params
        body = site.get(f"{EC}/events", page_params).json()
        events += body["events"]
        assert body["pagingMetadata"]["count"] == len(body["events"])
        if not body["pagingMetadata"]["hasNext"]:
            assert "next" not in body["pagingMetadata"]["cursors"]
            return events
        cursor = body["pagingMetadata"]["cursors"]["next"]
    raise AssertionError("paging never ended")


# List Events ------------------------------------------------------------------------------
def test_events_are_sorted_paged_and_deterministic(site: Site) -> None:
    first = site.get(f"{EC}/events", WINTER).json()
    assert set(first) == {"events", "pagingMetadata"}
    assert first["pagingMetadata"]["count"] == 50  # default page size
    assert first["pagingMetadata"]["hasNext"] is True
    everything = site.get(f"{EC}/events", {**WINTER, "cursorPaging.limit": 1000}).json()
    events = everything["events"]
    assert everything["pagingMetadata"] == {"count": len(events), "cursors": {}, "hasNext": False}
    assert events[:50] == first["events"]
    assert all_events(site, {**WINTER, "cursorPaging.limit": 7}) == events
    assert [e["start"] for e in events] == sorted(e["start"] for e in events)
    # Only the two connections importing and not disconnected contribute, several a week.
    assert {e["scheduleId"] for e in events} == set(site.schedules[:2])
    assert 2 * 8 * 3 <= len(events) <= 2 * 59 * 3
    assert any(e["allDay"] for e in events) and not all(e["allDay"] for e in events)
    for event in events:
        assert set(event) == {
            "scheduleId",
            "calendarType",
            "start",
            "end",
            "allDay",
            "scheduleOwnerId",
        }
        assert event["start"] < WINTER["to"] and event["end"] > WINTER["from"]
        assert event["start"].endswith("Z") and event["end"] > event["start"]


def test_events_with_own_pi_and_filters(site: Site) -> None:
    params = {**WINTER, "fieldsets": "OWN_PI", "cursorPaging.limit": 1000}
    events = site.get(f"{EC}/events", params).json()["events"]
    farah = [e for e in events if e["scheduleId"] == site.schedules[0]]
    assert {e["scheduleOwnerName"] for e in farah} == {"Farah Haddad"}
    # Farah imports from the chosen calendars (Primary and Work) only.
    assert {e["calendarName"] for e in farah} <= {"Primary", "Work"}
    assert all(e["title"] for e in events)
    only = site.get(f"{EC}/events", {**params, "scheduleIds": site.schedules[1]}).json()
    assert only["events"] == [e for e in events if e["scheduleId"] == site.schedules[1]]
    all_day = site.get(f"{EC}/events", {**params, "allDay": "true"}).json()["events"]
    assert all_day and all_day == [e for e in events if e["allDay"]]
    owner = site.sb.site(site.id).schedules[site.schedules[0]].user_id
    by_user = site.get(f"{EC}/events", {**params, "userIds": owner}).json()["events"]
    assert by_user == farah


def test_events_validation(site: Site) -> None:
    def violated(params) -> list[str]:
        response = site.get(f"{EC}/events", params)
        assert response.status_code == 400, response.text
        return [
            v["field"] for v in response.json()["details"]["validationError"]["fieldViolations"]
        ]

    assert violated({}) == ["from", "to"]
    assert violated({**WINTER, "from": "2025-01-01"}) == ["from"]
    assert violated({"from": WINTER["to"], "to": WINTER["from"]}) == ["from"]
    assert violated({**WINTER, "cursorPaging.limit": 1001}) == ["cursorPaging.limit"]
    assert violated({"cursorPaging.cursor": "garbage!"}) == ["cursorPaging.cursor"]


def test_events_partial_failure(site: Site) -> None:
    google = site.sb.site(site.id).providers["GOOGLE"]
    site.sb.faults(site.id).fail_provider(google)
    assert site.get(f"{EC}/events", WINTER).status_code == 503
    body = site.get(f"{EC}/events", {**WINTER, "partialFailure": "true"}).json()
    assert body["failedProviderIds"] == [google]
    assert {e["scheduleId"] for e in body["events"]} == {site.schedules[1]}


# Query Schedules and Query Sites ----------------------------------------------------------
def test_query_schedules_filters_and_pages_by_cursor(site: Site) -> None:
    site.sb.add_schedule(site.id, name="Former", status="CANCELLED")
    query = "/calendar/v3/schedules/query"
    body = {"query": {"filter": {"appId": BOOKINGS_APP_ID}, "cursorPaging": {"limit": 2}}}
    names, response = [], site.post(query, body).json()
    while True:
        names += [s["name"] for s in response["schedules"]]
        meta = response["pagingMetadata"]
        assert meta["count"] == len(response["schedules"])
        if not meta["hasNext"]:
            break
        response = site.post(
            query, {"query": {"cursorPaging": {"cursor": meta["cursors"]["next"]}}}
        )
        assert "prev" in response.json()["pagingMetadata"]["cursors"]
        response = response.json()
    assert names == ["Farah Haddad", "George Ito", "Hana Kim", "Ivan Petrov", "Julia Santos"]
    schedule = site.post(query, {}).json()["schedules"][0]
    assert set(schedule) == {
        "id",
        "externalId",
        "appId",
        "name",
        "status",
        "timeZone",
        "businessTimeZoneEnabled",
        "defaultTitle",
        "defaultCapacity",
        "createdDate",
    }
    everyone = {"query": {"filter": {"status": {"$in": ["ACTIVE", "CANCELLED"]}}}}
    assert len(site.post(query, everyone).json()["schedules"]) == 6
    by_id = {"query": {"filter": {"id": {"$in": site.schedules[:2]}}}}
    assert [s["id"] for s in site.post(query, by_id).json()["schedules"]] == site.schedules[:2]
    too_many = {"query": {"cursorPaging": {"limit": 101}}}
    assert site.post(query, too_many).status_code == 400
    bad_op = {"query": {"filter": {"name": {"$eq": "x"}}}}
    assert site.post(query, bad_op).status_code == 400


def test_query_sites_is_account_level(sb: Sandbox) -> None:
    account = sb.new_guid()
    for number in range(5):
        sb.add_site(name=f"Client {number}", account_id=account)
    sb.add_site(name="Someone else's")
    key = sb.create_api_key(account)
    headers = {"Authorization": key, "wix-account-id": account}
    url = sb.url + "/site-list/v2/sites/query"
    first = requests.post(
        url, json={"query": {"cursorPaging": {"limit": 2}}}, headers=headers, timeout=5
    )
    names = [s["name"] for s in first.json()["sites"]]
    cursor = first.json()["metadata"]["cursors"]["next"]
    while cursor:
        page = requests.post(
            url, json={"query": {"cursorPaging": {"cursor": cursor}}}, headers=headers, timeout=5
        ).json()
        names += [s["name"] for s in page["sites"]]
        assert page["metadata"]["count"] == len(page["sites"])
        cursor = page["metadata"]["cursors"].get("next")
    assert names == [f"Client {n}" for n in range(5)]
    by_name = {"query": {"filter": {"name": {"$in": ["Client 3", "Client 9"]}}}}
    found = requests.post(url, json=by_name, headers=headers, timeout=5).json()["sites"]
    assert [(s["name"], s["ownerAccountId"]) for s in found] == [("Client 3", account)]
    other = {"Authorization": key, "wix-account-id": sb.new_guid()}
    assert requests.post(url, json={}, headers=other, timeout=5).status_code == 403
    assert requests.post(url, json={}, headers={"Authorization": "x"}, timeout=5).status_code == 401


# OAuth tokens -----------------------------------------------------------------------------
def token_request(sb: Sandbox, **body) -> requests.Response:
    return requests.post(sb.url + "/oauth2/token", json=body, timeout=5)


def test_token_reaches_one_site_until_revoked_or_expired(site: Site) -> None:
    sb = site.sb
    app_id, secret = sb.create_app()
    instance = sb.install_app(app_id, site.id)
    grant = {"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret}
    response = token_request(sb, **grant, instance_id=instance)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 14400)

    def providers(token: str) -> requests.Response:
        headers = {"Authorization": token}  # no wix-site-id: the token is bound to the site
        return requests.get(sb.url + f"{EC}/providers", headers=headers, timeout=5)

    assert providers(body["access_token"]).status_code == 200
    assert providers("Bearer " + body["access_token"]).status_code == 200
    sb.revoke_access_tokens()
    revoked = providers(body["access_token"])
    assert revoked.status_code == 401
    assert revoked.json()["details"]["applicationError"]["code"] == "UNAUTHENTICATED"

    sb.token_lifetime_seconds = 60
    short = token_request(sb, **grant, instance_id=instance).json()
    assert short["expires_in"] == 60
    assert providers(short["access_token"]).status_code == 200
    sb.clock = lambda: time.time() + 61
    assert providers(short["access_token"]).status_code == 401


def test_token_errors(site: Site) -> None:
    sb = site.sb
    app_id, secret = sb.create_app()
    other_app, _ = sb.create_app()
    foreign_instance = sb.install_app(other_app, site.id)
    base = {"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret}
    cases = [
        ({**base, "client_secret": "nope", "instance_id": foreign_instance}, 401, "invalid_client"),
        ({**base, "instance_id": foreign_instance}, 400, "invalid_grant"),
        (base, 400, "invalid_request"),
    ]
    for body, status, error in cases:
        response = token_request(sb, **body)
        assert response.status_code == status
        assert set(response.json()) == {"error", "error_description"}
        assert response.json()["error"] == error


# faults -----------------------------------------------------------------------------------
def test_rate_limit_answers_429_with_retry_after(site: Site) -> None:
    site.sb.faults(site.id).rate_limit(times=2, retry_after=3)
    for _ in range(2):
        response = site.get(f"{EC}/providers")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "3"
        assert response.json()["details"]["applicationError"]["code"] == "TOO_MANY_REQUESTS"
    assert site.get(f"{EC}/providers").status_code == 200


def test_server_error_then_recovery(site: Site) -> None:
    site.sb.faults(site.id).server_error(times=1, status=504)
    failed = site.get(f"{EC}/connections")
    assert (failed.status_code, failed.content) == (504, b"")
    assert failed.headers["x-wix-request-id"]
    assert site.get(f"{EC}/connections").status_code == 200


def test_stall_trips_a_client_timeout(site: Site) -> None:
    site.sb.faults(site.id).stall(seconds=0.6, times=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(
            site.url + f"{EC}/providers",
            headers={"Authorization": site.key, "wix-site-id": site.id},
            timeout=0.2,
        )
    assert site.get(f"{EC}/providers").status_code == 200


def test_malformed_json_then_recovery(site: Site) -> None:
    site.sb.faults(site.id).malformed_json(times=1)
    broken = site.get(f"{EC}/connections")
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        broken.json()
    assert site.get(f"{EC}/connections").json()["connections"]


def test_latency_and_faults_apply_to_one_site_only(site: Site) -> None:
    sb = site.sb
    other = sb.add_site(name="Calm", account_id=sb.site(site.id).account_id)
    sb.faults(site.id).latency(0.15).server_error(times=5)
    started = time.monotonic()
    assert site.get(f"{EC}/providers").status_code == 500
    assert time.monotonic() - started >= 0.15
    assert site.get(f"{EC}/providers", **{"wix-site-id": other.id}).status_code == 200
    sb.faults(site.id).clear()
    assert site.get(f"{EC}/providers").status_code == 200


def test_request_log_counts_calls_per_site(site: Site) -> None:
    sb = site.sb
    site.get(f"{EC}/connections")
    site.get(f"{EC}/connections/{site.connections[0]}")
    site.get(f"{EC}/providers", Authorization="bad")
    assert sb.count_requests(site.id) == 3
    assert sb.count_requests(site.id, path=f"{EC}/connections") == 2
    assert [(r.method, r.status) for r in sb.requests] == [("GET", 200), ("GET", 200), ("GET", 401)]
    sb.reset_requests()
    assert sb.count_requests() == 0


def test_control_endpoints(site: Site) -> None:
    sb, url = site.sb, site.url
    assert requests.get(url + "/_sandbox/health", timeout=5).json()["ok"] is True
    faults = {"siteId": site.id, "rateLimit": {"times": 1, "retryAfter": 2}}
    assert requests.post(url + "/_sandbox/faults", json=faults, timeout=5).status_code == 200
    assert site.get(f"{EC}/providers").status_code == 429
    change = {"siteId": site.id, "connectionId": site.connections[0], "action": "error"}
    changed = requests.post(url + "/_sandbox/connections", json=change, timeout=5).json()
    assert changed["connection"]["errorReason"] == "TOKEN_REVOKED"
    count = requests.get(url + "/_sandbox/requests/count", params={"siteId": site.id}, timeout=5)
    assert count.json() == {"count": 1}
    requests.post(url + "/_sandbox/reset-requests", timeout=5)
    assert sb.count_requests() == 0
    requests.post(url + "/_sandbox/faults", json={"latency": 0.01}, timeout=5)
    assert sb.default_latency == 0.01
    requests.post(url + "/_sandbox/revoke-tokens", json={"lifetimeSeconds": 30}, timeout=5)
    assert sb.token_lifetime_seconds == 30
    missing = {"siteId": site.id, "connectionId": "nope", "action": "remove"}
    assert requests.post(url + "/_sandbox/connections", json=missing, timeout=5).status_code == 404


# seeds and the runner ---------------------------------------------------------------------
def test_seed_demo_covers_every_status_and_its_credentials_work(sb: Sandbox) -> None:
    demo = seed_demo(sb)
    assert len(demo.sites) == 3
    conns = [c for s in sb.sites.values() for c in s.connections.values()]
    assert {c.status for c in conns} == {
        "CONNECTED",
        "SYNC_IN_PROGRESS",
        "SYNCED",
        "DISCONNECTED",
        "ERROR",
    }
    assert {c.error_reason for c in conns if c.status == "ERROR"} == {
        "TOKEN_REVOKED",
        "EXTERNAL_CALENDAR_DELETED",
        "EXTERNAL_CALENDAR_CREATION_FAILED",
    }
    for demo_site in demo.sites:
        assert 2 <= len(sb.site(demo_site.site_id).schedules) <= 6
        assert (demo_site.instance_id is None) != (demo_site.api_key is None)
    oauth_site, key_site = demo.sites[0], demo.sites[2]
    token = token_request(
        sb,
        grant_type="client_credentials",
        client_id=demo.app_id,
        client_secret=demo.app_secret,
        instance_id=oauth_site.instance_id,
    ).json()["access_token"]
    listed = requests.get(
        sb.url + f"{EC}/connections", headers={"Authorization": token}, timeout=5
    ).json()["connections"]
    assert len(listed) == 4
    headers = {"Authorization": key_site.api_key, "wix-site-id": key_site.site_id}
    assert requests.get(sb.url + f"{EC}/connections", headers=headers, timeout=5).status_code == 200
    again = seed_demo(Sandbox())
    assert (again.app_secret, again.api_key) != (demo.app_secret, demo.api_key)


def test_generate_fleet_builds_every_site_and_connection(sb: Sandbox) -> None:
    """Its speed is measured by bench/refresh.py, not here."""
    fleet = generate_fleet(sb, sites=200, connections_per_site=25, seed=1)
    assert len(fleet.sites) == 200
    assert sum(len(s.connections) for s in sb.sites.values()) == 5_000
    last = fleet.sites[-1]
    headers = {"Authorization": last.api_key, "wix-site-id": last.site_id}
    listed = requests.get(sb.url + f"{EC}/connections", headers=headers, timeout=5).json()
    assert len(listed["connections"]) == 25


def test_credentials_file_is_private(tmp_path) -> None:
    path = tmp_path / "creds.json"
    path.write_text("old")
    path.chmod(0o644)
    write_credentials(str(path), {"url": "http://127.0.0.1:1"})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": "http://127.0.0.1:1"}
