"""WixClient against the sandbox over real HTTP: every method, both ways in, every error."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from wixapi import errors
from wixapi.client import ApiKeyAuth, OAuthAppAuth, RetryPolicy, TokenCache, WixClient
from wixapi.types import (
    Calendar,
    CalendarType,
    ConnectMethod,
    ErrorReason,
    ExportConfig,
    ExportMode,
    ImportConfig,
    ImportMode,
    Status,
    SyncConfig,
)

FAST = RetryPolicy(max_retries=2, backoff_factor=0.01, retry_after_max=1, jitter=0)


@pytest.fixture
def site(wix_sandbox):
    site = wix_sandbox.add_site(name="Salon Aurora", premium=True)
    site.anna = wix_sandbox.add_schedule(site.id, name="Anna Lee")
    site.ben = wix_sandbox.add_schedule(site.id, name="Ben Okafor")
    return site


@pytest.fixture
def key_client(wix_sandbox, site):
    key = wix_sandbox.create_api_key(account_id=site.account_id)
    return WixClient(
        wix_sandbox.url, auth=ApiKeyAuth(api_key=key, site_id=site.id), retry=FAST, timeout=2
    )


@pytest.fixture
def app(wix_sandbox, site):
    app_id, secret = wix_sandbox.create_app()
    return app_id, secret, wix_sandbox.install_app(app_id, site.id)


@pytest.fixture
def app_client(wix_sandbox, app):
    app_id, secret, instance_id = app
    auth = OAuthAppAuth(app_id=app_id, app_secret=secret, instance_id=instance_id)
    return WixClient(wix_sandbox.url, auth=auth, retry=FAST, timeout=2, token_cache=TokenCache())


def calls_to(sandbox, path_part: str) -> int:
    return sum(1 for r in sandbox.requests if path_part in r.path)


# --- Read endpoints, both ways in -----------------------------------------------------------


@pytest.mark.parametrize("client_fixture", ["key_client", "app_client"])
def test_list_providers_with_each_way_in(request, client_fixture, site):
    client = request.getfixturevalue(client_fixture)

    providers = {p.calendar_type: p for p in client.list_providers()}

    assert set(providers) == {CalendarType.GOOGLE, CalendarType.MICROSOFT, CalendarType.I_CAL}
    assert providers[CalendarType.GOOGLE].connect_methods == (ConnectMethod.OAUTH,)
    assert providers[CalendarType.I_CAL].connect_methods == (ConnectMethod.CREDENTIALS,)
    assert providers[CalendarType.GOOGLE].id == site.providers["GOOGLE"]
    assert providers[CalendarType.GOOGLE].raw["id"] == site.providers["GOOGLE"]


def test_get_connection_returns_typed_connection(wix_sandbox, site, key_client):
    conn_id = wix_sandbox.add_connection(
        site.id,
        schedule_id=site.anna,
        calendar_type="GOOGLE",
        status="ERROR",
        error_reason="TOKEN_REVOKED",
        email="anna@example.com",
        import_mode="CALENDARS",
        export_mode="DEDICATED",
    )

    conn = key_client.get_connection(conn_id)

    assert conn.id == conn_id
    assert conn.schedule_id == site.anna
    assert conn.status is Status.ERROR
    assert conn.error_reason is ErrorReason.TOKEN_REVOKED
    assert conn.external_account_email == "anna@example.com"
    assert conn.sync_config.list_event_from_calendars.mode is ImportMode.CALENDARS
    assert conn.sync_config.list_event_from_calendars.calendars
    assert conn.sync_config.sync_to_calendar.mode is ExportMode.DEDICATED
    assert conn.raw == wix_sandbox.connection_json(site.id, conn_id)


def test_get_unknown_connection_raises_not_found_with_request_id(key_client):
    with pytest.raises(errors.WixNotFound) as caught:
        key_client.get_connection("no-such-connection")

    assert caught.value.status == 404
    assert caught.value.request_id
    assert caught.value.request_id in str(caught.value)


def test_list_connections_filters_by_schedule(wix_sandbox, site, key_client):
    anna = wix_sandbox.add_connection(site.id, schedule_id=site.anna, calendar_type="GOOGLE")
    wix_sandbox.add_connection(site.id, schedule_id=site.ben, calendar_type="MICROSOFT")

    everything = key_client.list_connections()
    only_anna = key_client.list_connections(schedule_ids=[site.anna])

    assert len(everything.connections) == 2
    assert everything.complete
    assert [c.id for c in only_anna.connections] == [anna]


def test_list_connections_partial_failure_names_failed_providers(wix_sandbox, site, key_client):
    wix_sandbox.add_connection(site.id, schedule_id=site.anna, calendar_type="GOOGLE")
    ben = wix_sandbox.add_connection(site.id, schedule_id=site.ben, calendar_type="MICROSOFT")
    wix_sandbox.faults(site.id).fail_provider(site.providers["GOOGLE"])

    result = key_client.list_connections()

    assert [c.id for c in result.connections] == [ben]
    assert result.failed_provider_ids == (site.providers["GOOGLE"],)
    assert not result.complete


def test_list_connections_without_partial_failure_fails_whole_call(wix_sandbox, site, key_client):
    wix_sandbox.add_connection(site.id, schedule_id=site.anna, calendar_type="GOOGLE")
    wix_sandbox.add_connection(site.id, schedule_id=site.ben, calendar_type="MICROSOFT")
    wix_sandbox.faults(site.id).fail_provider(site.providers["GOOGLE"])

    with pytest.raises(errors.WixError):
        key_client.list_connections(partial_failure=False)


def test_list_calendars(wix_sandbox, site, key_client):
    conn_id = wix_sandbox.add_connection(site.id, schedule_id=site.anna, calendar_type="GOOGLE")

    calendars = key_client.list_calendars(conn_id)

    assert calendars
    assert all(isinstance(c, Calendar) and c.id and c.name for c in calendars)


def test_list_calendars_of_disconnected_connection(wix_sandbox, site, key_client):
    conn_id = wix_sandbox.add_connection(
        site.id, schedule_id=site.anna, calendar_type="GOOGLE", status="DISCONNECTED"
    )

    with pytest.raises(errors.WixApiError) as caught:
        key_client.list_calendars(conn_id)

    assert (caught.value.status, caught.value.code) == (428, "CONNECTION_NOT_CONNECTED")


# --- Write endpoints ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("import_config", "export_config"),
    [
        (ImportConfig(enabled=True, mode=ImportMode.PRIMARY), ExportConfig(enabled=False)),
        (
            ImportConfig(enabled=True, mode=ImportMode.CALENDARS, calendars=()),
            ExportConfig(enabled=True, mode=ExportMode.DEDICATED),
        ),
    ],
)
def test_update_sync_config_sends_complete_one_of_shapes(
    wix_sandbox, site, key_client, import_config, export_config
):
    conn_id = wix_sandbox.add_connection(site.id, schedule_id=site.anna, calendar_type="GOOGLE")
    if import_config.mode is ImportMode.CALENDARS:
        chosen = key_client.list_calendars(conn_id)[:2]
        import_config = ImportConfig(enabled=True, mode=ImportMode.CALENDARS, calendars=chosen)
    wanted = SyncConfig(list_event_from_calendars=import_config, sync_to_calendar=export_config)

    conn = key_client.update_sync_config(conn_id, sync_config=wanted)

    assert conn.sync_config.list_event_from_calendars.mode is import_config.mode
    assert [c.id for c in conn.sync_config.list_event_from_calendars.calendars] == [
        c.id for c in import_config.calendars
    ]
    assert conn.sync_config.sync_to_calendar == export_config
    assert wix_sandbox.connection_json(site.id, conn_id)["syncConfig"] == wanted.to_json()


def test_update_sync_config_beyond_provider_capability(wix_sandbox, site, key_client):
    conn_id = wix_sandbox.add_connection(site.id, schedule_id=site.anna, calendar_type="MICROSOFT")
    wanted = SyncConfig(sync_to_calendar=ExportConfig(enabled=True, mode=ExportMode.DEDICATED))

    with pytest.raises(errors.WixApiError) as caught:
        key_client.update_sync_config(conn_id, sync_config=wanted)

    assert (caught.value.status, caught.value.code) == (428, "NOT_SUPPORTED_BY_PROVIDER")


def test_disconnect_then_again_is_already_disconnected(wix_sandbox, site, key_client):
    conn_id = wix_sandbox.add_connection(site.id, schedule_id=site.anna, calendar_type="GOOGLE")

    conn = key_client.disconnect(conn_id)

    assert conn.status is Status.DISCONNECTED
    with pytest.raises(errors.WixApiError) as caught:
        key_client.disconnect(conn_id)
    assert (caught.value.status, caught.value.code) == (428, "CONNECTION_ALREADY_DISCONNECTED")


def test_connect_by_oauth_through_consent_page(wix_sandbox, site, key_client):
    redirect = "http://portal.test/connect/return?state=abc"

    oauth_url = key_client.connect_by_oauth(
        schedule_id=site.anna, provider_id=site.providers["GOOGLE"], redirect_url=redirect
    )
    page = requests.get(oauth_url, timeout=5)
    assert page.status_code == 200
    approve = requests.post(
        oauth_url,
        data={"decision": "approve", "email": "anna@gmail.test"},
        allow_redirects=False,
        timeout=5,
    )

    assert approve.status_code == 302
    location = approve.headers["Location"]
    assert location.startswith("http://portal.test/connect/return?state=abc&connectionId=")
    connection_id = requests.utils.unquote(location.split("connectionId=")[1])
    conn = key_client.get_connection(connection_id)
    assert conn.schedule_id == site.anna
    assert conn.external_account_email == "anna@gmail.test"


def test_connect_by_oauth_with_credentials_only_provider(site, key_client):
    with pytest.raises(errors.WixApiError) as caught:
        key_client.connect_by_oauth(
            schedule_id=site.anna,
            provider_id=site.providers["I_CAL"],
            redirect_url="http://portal.test/r",
        )

    assert (caught.value.status, caught.value.code) == (428, "NOT_SUPPORTED_BY_PROVIDER")


def test_connect_by_credentials(site, key_client):
    conn = key_client.connect_by_credentials(
        schedule_id=site.ben,
        provider_id=site.providers["I_CAL"],
        email="ben@icloud.test",
        password="correct horse",
    )

    assert conn.status is Status.CONNECTED
    assert conn.external_account_email == "ben@icloud.test"
    assert conn.calendar_type is CalendarType.I_CAL


def test_bad_calendar_credentials_are_not_an_auth_error_and_keep_the_token(
    wix_sandbox, site, app_client
):
    app_client.list_providers()
    with pytest.raises(errors.WixApiError) as caught:
        app_client.connect_by_credentials(
            schedule_id=site.ben,
            provider_id=site.providers["I_CAL"],
            email="ben@icloud.test",
            password="wrong-password",
        )

    assert not isinstance(caught.value, errors.WixAuthError)
    assert (caught.value.status, caught.value.code) == (401, "BAD_CREDENTIALS")
    assert "wrong-password" not in str(caught.value)
    assert calls_to(wix_sandbox, "/oauth2/token") == 1


def test_premium_feature_not_enabled(wix_sandbox):
    site = wix_sandbox.add_site(name="Free plan", premium=False)
    schedule = wix_sandbox.add_schedule(site.id, name="Cleo")
    key = wix_sandbox.create_api_key(account_id=site.account_id)
    client = WixClient(wix_sandbox.url, auth=ApiKeyAuth(api_key=key, site_id=site.id), retry=FAST)

    with pytest.raises(errors.WixApiError) as caught:
        client.connect_by_credentials(
            schedule_id=schedule,
            provider_id=site.providers["I_CAL"],
            email="cleo@icloud.test",
            password="pw",
        )

    assert (caught.value.status, caught.value.code) == (403, "PREMIUM_FEATURE_NOT_ENABLED")
    assert not isinstance(caught.value, errors.WixAuthError)


def test_connect_by_credentials_is_not_retried(wix_sandbox, site, key_client):
    wix_sandbox.faults(site.id).server_error(times=1, status=503)

    with pytest.raises(errors.WixUnavailable):
        key_client.connect_by_credentials(
            schedule_id=site.ben,
            provider_id=site.providers["I_CAL"],
            email="ben@icloud.test",
            password="pw",
        )

    assert calls_to(wix_sandbox, "connectByCredentials") == 1


def test_validation_error_carries_field_violations(key_client):
    with pytest.raises(errors.WixValidationError) as caught:
        key_client.list_events(start=None, end=None)

    assert caught.value.status == 400
    assert {v.field for v in caught.value.field_violations} >= {"from"}


# --- Paging ---------------------------------------------------------------------------------


def test_iter_events_follows_every_page_in_start_order(wix_sandbox, site, key_client):
    for schedule in (site.anna, site.ben):
        wix_sandbox.add_connection(
            site.id, schedule_id=schedule, calendar_type="GOOGLE", import_mode="PRIMARY"
        )
    start = datetime(2026, 12, 1, tzinfo=UTC)
    window = {"start": start, "end": start + timedelta(days=28)}

    pages = list(key_client.iter_event_pages(**window, limit=5))
    events = list(key_client.iter_events(**window, limit=5))

    assert len(pages) > 2
    assert len(events) == sum(len(p.events) for p in pages) > 10
    assert [e.start for e in events] == sorted(e.start for e in events)
    assert all(e.title == "" for e in events)
    titled = key_client.list_events(**window, include_titles=True, limit=1000)
    assert len(titled.events) == len(events)
    assert all(e.title for e in titled.events)


def test_list_events_partial_failure(wix_sandbox, site, key_client):
    wix_sandbox.add_connection(
        site.id, schedule_id=site.anna, calendar_type="GOOGLE", import_mode="PRIMARY"
    )
    wix_sandbox.add_connection(
        site.id, schedule_id=site.ben, calendar_type="MICROSOFT", import_mode="PRIMARY"
    )
    wix_sandbox.faults(site.id).fail_provider(site.providers["MICROSOFT"])
    start = datetime(2026, 12, 1, tzinfo=UTC)

    page = key_client.list_events(start=start, end=start + timedelta(days=14), limit=1000)

    assert page.failed_provider_ids == (site.providers["MICROSOFT"],)
    assert page.events
    assert {e.schedule_id for e in page.events} == {site.anna}


def test_iter_schedules_pages(wix_sandbox, site, key_client):
    for n in range(7):
        wix_sandbox.add_schedule(site.id, name=f"Staff {n}")

    schedules = list(key_client.iter_schedules(limit=3))

    assert len(schedules) == 9
    assert len({s.id for s in schedules}) == 9
    assert {"Anna Lee", "Ben Okafor"} <= {s.name for s in schedules}
    assert calls_to(wix_sandbox, "/schedules/query") == 3


def test_query_sites_at_account_level(wix_sandbox, site):
    other = wix_sandbox.add_site(name="Second site", account_id=site.account_id)
    wix_sandbox.add_site(name="Someone else's site")
    key = wix_sandbox.create_api_key(account_id=site.account_id)
    client = WixClient(
        wix_sandbox.url, auth=ApiKeyAuth(api_key=key, account_id=site.account_id), retry=FAST
    )

    sites = list(client.iter_sites(limit=1))

    assert {s.id for s in sites} == {site.id, other.id}
    assert calls_to(wix_sandbox, "/sites/query") >= 2


# --- Auth -----------------------------------------------------------------------------------


def test_token_is_cached_and_fetched_again_once_on_401(wix_sandbox, app_client):
    app_client.list_providers()
    app_client.list_providers()
    assert calls_to(wix_sandbox, "/oauth2/token") == 1

    wix_sandbox.revoke_access_tokens()
    app_client.list_providers()

    assert calls_to(wix_sandbox, "/oauth2/token") == 2
    assert [r.status for r in wix_sandbox.requests if "providers" in r.path] == [200, 200, 401, 200]


def test_token_is_fetched_again_shortly_before_it_expires(wix_sandbox, app_client):
    wix_sandbox.token_lifetime_seconds = 1
    app_client.list_providers()
    time.sleep(1.05)
    app_client.list_providers()

    assert calls_to(wix_sandbox, "/oauth2/token") == 2
    assert all(r.status == 200 for r in wix_sandbox.requests)


def test_wrong_app_secret_is_an_auth_error_without_the_secret(wix_sandbox, app):
    app_id, _, instance_id = app
    auth = OAuthAppAuth(app_id=app_id, app_secret="not-the-secret-1234", instance_id=instance_id)
    client = WixClient(wix_sandbox.url, auth=auth, retry=FAST, token_cache=TokenCache())

    with pytest.raises(errors.WixAuthError) as caught:
        client.list_providers()

    assert caught.value.status in (400, 401)
    assert "not-the-secret-1234" not in str(caught.value)
    assert "not-the-secret-1234" not in repr(auth) + repr(client)


def test_wrong_api_key_is_an_auth_error(wix_sandbox, site):
    client = WixClient(
        wix_sandbox.url, auth=ApiKeyAuth(api_key="IST.bogus-key", site_id=site.id), retry=FAST
    )

    with pytest.raises(errors.WixAuthError) as caught:
        client.list_providers()

    assert caught.value.status == 401
    assert "IST.bogus-key" not in str(caught.value)


def test_api_key_of_another_account_is_refused(wix_sandbox, site):
    stranger = wix_sandbox.add_site(name="Not ours")
    key = wix_sandbox.create_api_key(account_id=site.account_id)
    client = WixClient(
        wix_sandbox.url, auth=ApiKeyAuth(api_key=key, site_id=stranger.id), retry=FAST
    )

    with pytest.raises(errors.WixAuthError) as caught:
        client.list_providers()

    assert caught.value.status == 403


def test_a_site_sees_only_its_own_connections(wix_sandbox, site, key_client):
    other = wix_sandbox.add_site(name="Other", account_id=site.account_id)
    schedule = wix_sandbox.add_schedule(other.id, name="Dora")
    foreign = wix_sandbox.add_connection(other.id, schedule_id=schedule, calendar_type="GOOGLE")

    assert key_client.list_connections().connections == ()
    with pytest.raises(errors.WixNotFound):
        key_client.get_connection(foreign)


# --- Faults and retries ---------------------------------------------------------------------


def test_rate_limit_is_retried_after_retry_after(wix_sandbox, site, key_client):
    wix_sandbox.faults(site.id).rate_limit(times=1, retry_after=1)

    started = time.monotonic()
    providers = key_client.list_providers()

    assert providers
    assert time.monotonic() - started >= 0.9
    assert [r.status for r in wix_sandbox.requests] == [429, 200]
    assert key_client.calls == 2


def test_retry_after_is_capped(wix_sandbox, site, key_client):
    wix_sandbox.faults(site.id).rate_limit(times=1, retry_after=3600)

    started = time.monotonic()
    key_client.list_providers()

    assert time.monotonic() - started < 5


def test_rate_limit_gives_up_with_clear_error(wix_sandbox, site, key_client):
    wix_sandbox.faults(site.id).rate_limit(times=10, retry_after=0)

    with pytest.raises(errors.WixRateLimited) as caught:
        key_client.list_providers()

    assert caught.value.status == 429
    assert "gave up after 2 retries" in str(caught.value)
    assert len(wix_sandbox.requests) == 3


@pytest.mark.parametrize("status", [502, 503, 504])
def test_unavailable_statuses_are_retried(wix_sandbox, site, key_client, status):
    wix_sandbox.faults(site.id).server_error(times=1, status=status)

    assert key_client.list_providers()
    assert [r.status for r in wix_sandbox.requests] == [status, 200]


def test_internal_error_is_not_retried(wix_sandbox, site, key_client):
    wix_sandbox.faults(site.id).server_error(times=1, status=500)

    with pytest.raises(errors.WixUnavailable) as caught:
        key_client.list_providers()

    assert caught.value.status == 500
    assert len(wix_sandbox.requests) == 1


def test_stall_past_timeout_is_unavailable(wix_sandbox, site):
    key = wix_sandbox.create_api_key(account_id=site.account_id)
    client = WixClient(
        wix_sandbox.url,
        auth=ApiKeyAuth(api_key=key, site_id=site.id),
        retry=RetryPolicy(max_retries=0),
        timeout=0.3,
    )
    wix_sandbox.faults(site.id).stall(seconds=1.5, times=1)

    with pytest.raises(errors.WixUnavailable) as caught:
        client.list_providers()

    assert "did not answer" in str(caught.value)


def test_malformed_json_is_invalid_response(wix_sandbox, site, key_client):
    wix_sandbox.faults(site.id).malformed_json(times=1)

    with pytest.raises(errors.WixInvalidResponse):
        key_client.list_providers()


def test_unreachable_wix_is_unavailable():
    client = WixClient("http://127.0.0.1:9", auth=ApiKeyAuth(api_key="k", site_id="s"), retry=FAST)

    with pytest.raises(errors.WixUnavailable) as caught:
        client.list_providers()

    assert caught.value.status is None
    assert "Could not reach Wix" in str(caught.value)
