"""The REST API as an internal tool sees it: tokens, scoping, errors, actions over the sandbox."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from connections import tasks
from connections.models import Connection, Provider, Schedule
from connections.services.refresh import tenant_refresh
from portal.api.throttling import TokenRateThrottle
from tenants.models import AuditEvent
from tenants.tests.builders import api_client_for, staff_user

pytestmark = pytest.mark.django_db


def conn(tenant, calendar_type="GOOGLE") -> Connection:
    return Connection.objects.get(tenant=tenant, calendar_type=calendar_type)


# --- Auth -----------------------------------------------------------------------------------


def test_no_token_is_401_in_the_error_shape():
    response = APIClient().get("/api/v1/connections/")

    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "not_authenticated",
            "message": "Authentication credentials were not provided.",
        }
    }


def test_token_from_the_command_works_and_expires(world):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_token", "olga", "--expiry", "1", stdout=out, stderr=err)
    token = out.getvalue().strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert client.get("/api/v1/tenants/").status_code == 200
    assert "not shown again" in err.getvalue()
    assert token not in err.getvalue()
    AuthToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))
    assert client.get("/api/v1/tenants/").status_code == 401


def test_create_api_token_for_unknown_user_fails_readably():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("create_api_token", "ghost")


# --- Tenants --------------------------------------------------------------------------------


def test_tenant_list_is_scoped_and_never_shows_the_key(world):
    response = api_client_for(world.operator).get("/api/v1/tenants/")

    assert response.status_code == 200
    names = [t["name"] for t in response.json()["results"]]
    assert names == ["Tenant A"]
    body = response.content.decode()
    assert world.tenant_a.api_key not in body
    assert response.json()["results"][0]["api_key_set"] is True
    assert "api_key" not in response.json()["results"][0]


def test_another_tenants_tenant_is_404(world):
    response = api_client_for(world.operator).get(f"/api/v1/tenants/{world.tenant_b.pk}/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "Tenant B" not in response.content.decode()


def test_only_superusers_create_tenants(world, wix_sandbox):
    site = wix_sandbox.add_site(name="New")
    body = {"name": "New client", "site_id": site.id, "api_key": "IST.some-new-key-1234"}

    refused = api_client_for(world.operator).post("/api/v1/tenants/", body)
    created = api_client_for(world.superuser).post("/api/v1/tenants/", body)

    assert refused.status_code == 403
    assert created.status_code == 201
    assert created.json()["api_key_set"] is True
    assert "IST.some-new-key-1234" not in created.content.decode()


def test_tenant_without_a_way_in_is_a_field_error(world):
    response = api_client_for(world.superuser).post(
        "/api/v1/tenants/", {"name": "X", "site_id": "5c0a1f0e-1a2b-4c3d-8e9f-001122334455"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "api_key" in response.json()["error"]["fields"]


def test_malformed_site_id_is_a_field_error(world):
    response = api_client_for(world.superuser).post(
        "/api/v1/tenants/", {"name": "X", "site_id": "not-a-guid", "api_key": "k" * 20}
    )

    assert response.status_code == 400
    assert "site_id" in response.json()["error"]["fields"]


def test_operator_updates_and_deactivates_viewer_cannot(world):
    url = f"/api/v1/tenants/{world.tenant_a.pk}/"

    assert api_client_for(world.viewer).patch(url, {"notes": "x"}).status_code == 403
    assert api_client_for(world.viewer).post(url + "deactivate/").status_code == 403
    assert api_client_for(world.operator).patch(url, {"notes": "VIP"}).json()["notes"] == "VIP"
    assert api_client_for(world.operator).post(url + "deactivate/").json()["is_active"] is False
    assert AuditEvent.objects.filter(action="deactivate_tenant", via="api").count() == 1


def test_verify_credentials(world):
    response = api_client_for(world.operator).post(f"/api/v1/tenants/{world.tenant_a.pk}/verify/")

    assert response.status_code == 200
    assert response.json()["credentials_status"] == "ok"


def test_refresh_queues_a_job_and_409_while_one_runs(world, django_capture_on_commit_callbacks):
    client = api_client_for(world.operator)
    url = f"/api/v1/tenants/{world.tenant_a.pk}/refresh/"

    with tasks.tenant_lock(world.tenant_a.pk):
        busy = client.post(url)
    with django_capture_on_commit_callbacks(execute=True):
        accepted = client.post(url)

    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "conflict"
    assert accepted.status_code == 202
    job = client.get(f"/api/v1/jobs/{accepted.json()['job']['id']}/")
    assert job.status_code == 200
    assert job.json()["status"] == "success"
    assert job.json()["result"]["outcome"] == "ok"


def test_jobs_of_other_tenants_are_404(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        accepted = api_client_for(world.superuser).post(
            f"/api/v1/tenants/{world.tenant_b.pk}/refresh/"
        )

    response = api_client_for(world.operator).get(f"/api/v1/jobs/{accepted.json()['job']['id']}/")

    assert response.status_code == 404


def test_providers_and_schedules_per_tenant(world):
    client = api_client_for(world.viewer)

    providers = client.get(f"/api/v1/tenants/{world.tenant_a.pk}/providers/").json()
    schedules = client.get(f"/api/v1/tenants/{world.tenant_a.pk}/schedules/").json()

    assert {p["calendar_type"] for p in providers} == {"GOOGLE", "MICROSOFT", "I_CAL"}
    assert [s["label"] for s in schedules] == ["Anna A", "Ben A"]
    assert client.get(f"/api/v1/tenants/{world.tenant_b.pk}/providers/").status_code == 404


# --- Connections ----------------------------------------------------------------------------


def test_connection_list_is_scoped_filtered_and_cursor_paged(world):
    client = api_client_for(world.viewer)

    everything = client.get("/api/v1/connections/").json()
    broken = client.get("/api/v1/connections/?status=ERROR&status=DISCONNECTED").json()
    page = client.get("/api/v1/connections/?page_size=1").json()

    assert {c["tenant"] for c in everything["results"]} == {world.tenant_a.pk}
    assert [c["status"] for c in broken["results"]] == ["ERROR"]
    assert broken["results"][0]["schedule"]["label"] == "Ben A"
    assert len(page["results"]) == 1
    following = client.get(page["next"]).json()
    assert following["results"][0]["id"] != page["results"][0]["id"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=BROKEN", "status"),
        ("tenant=abc", "tenant"),
        ("changed_since=yesterday", "changed_since"),
    ],
)
def test_bad_filters_are_400_with_field_errors(world, query, field):
    response = api_client_for(world.viewer).get(f"/api/v1/connections/?{query}")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_filtering_by_another_tenant_reveals_nothing(world):
    response = api_client_for(world.viewer).get(f"/api/v1/connections/?tenant={world.tenant_b.pk}")

    assert response.status_code == 400
    assert "Tenant B" not in response.content.decode()


def test_changed_since_finds_connections_with_recent_changes(world):
    since = timezone.now()
    world.sandbox.set_connection_error(
        world.site_a.id, conn(world.tenant_a).wix_id, "EXTERNAL_CALENDAR_DELETED"
    )
    tenant_refresh(world.tenant_a)

    response = api_client_for(world.viewer).get(
        "/api/v1/connections/", {"changed_since": since.isoformat()}
    )

    assert [c["wix_id"] for c in response.json()["results"]] == [conn(world.tenant_a).wix_id]


def test_connection_list_query_count_is_constant(world, django_assert_max_num_queries):
    client = api_client_for(world.superuser)
    site = world.site_a
    for n in range(30):
        schedule = world.sandbox.add_schedule(site.id, name=f"Staff {n}")
        world.sandbox.add_connection(site.id, schedule_id=schedule, calendar_type="GOOGLE")
    tenant_refresh(world.tenant_a)

    with django_assert_max_num_queries(6):
        response = client.get("/api/v1/connections/")

    assert len(response.json()["results"]) == 34


def test_disconnect_by_operator(world):
    row = conn(world.tenant_a)

    response = api_client_for(world.operator).post(f"/api/v1/connections/{row.pk}/disconnect/")

    assert response.status_code == 200
    assert response.json()["status"] == "DISCONNECTED"
    assert world.sandbox.connection_json(world.site_a.id, row.wix_id)["status"] == "DISCONNECTED"


def test_viewer_cannot_act_and_other_tenant_is_404(world):
    mine, theirs = conn(world.tenant_a), conn(world.tenant_b)

    as_viewer = api_client_for(world.viewer).post(f"/api/v1/connections/{mine.pk}/disconnect/")
    as_stranger = api_client_for(world.operator).post(
        f"/api/v1/connections/{theirs.pk}/disconnect/"
    )

    assert as_viewer.status_code == 403
    assert as_stranger.status_code == 404
    assert world.sandbox.connection_json(world.site_a.id, mine.wix_id)["status"] == "SYNCED"
    assert world.sandbox.connection_json(world.site_b.id, theirs.wix_id)["status"] == "SYNCED"


def test_sync_config_replaces_the_whole_config(world):
    row = conn(world.tenant_a)
    body = {
        "import": {"enabled": False, "mode": "PRIMARY"},
        "export": {"enabled": True, "mode": "DEDICATED"},
    }

    response = api_client_for(world.operator).put(
        f"/api/v1/connections/{row.pk}/sync-config/", body, format="json"
    )

    assert response.status_code == 200
    assert response.json()["sync_config"] == {
        "import": {"enabled": False, "mode": "PRIMARY", "calendars": []},
        "export": {"enabled": True, "mode": "DEDICATED"},
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"import": {"enabled": True}, "export": {"enabled": False}}, "import"),
        (
            {"import": {"enabled": True, "mode": "SOMETIMES"}, "export": {"enabled": False}},
            "import",
        ),
        ({"export": {"enabled": False}}, "import"),
    ],
)
def test_malformed_sync_config_is_400(world, body, field):
    response = api_client_for(world.operator).put(
        f"/api/v1/connections/{conn(world.tenant_a).pk}/sync-config/", body, format="json"
    )

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_impossible_sync_config_is_400_before_wix(world):
    row = conn(world.tenant_a, "MICROSOFT")
    calls = len(world.sandbox.requests)
    body = {"import": {"enabled": False}, "export": {"enabled": True, "mode": "DEDICATED"}}

    response = api_client_for(world.operator).put(
        f"/api/v1/connections/{row.pk}/sync-config/", body, format="json"
    )

    assert response.status_code == 400
    assert (
        response.json()["error"]["fields"] == {"export": ["Microsoft can export only to: PRIMARY."]}
        or "export" in response.json()["error"]["fields"]
    )
    assert len(world.sandbox.requests) == calls


def test_wix_failure_is_503_with_wix_code(world):
    world.sandbox.faults(world.site_a.id).server_error(times=5, status=503)

    response = api_client_for(world.operator).post(
        f"/api/v1/connections/{conn(world.tenant_a).pk}/refresh/"
    )

    assert response.status_code == 503
    assert response.json()["error"]["wix"]["code"] == "UNAVAILABLE"


def test_wix_internal_error_is_503_with_request_id(world):
    world.sandbox.faults(world.site_a.id).server_error(times=1, status=500)

    response = api_client_for(world.operator).post(
        f"/api/v1/connections/{conn(world.tenant_a).pk}/disconnect/"
    )

    assert response.status_code == 503
    assert response.json()["error"]["wix"]["requestId"]


def test_change_history(world):
    row = conn(world.tenant_a)
    api_client_for(world.operator).post(f"/api/v1/connections/{row.pk}/disconnect/")

    changes = api_client_for(world.viewer).get(f"/api/v1/connections/{row.pk}/changes/").json()

    assert changes["results"][0]["field"] == "status"
    assert (changes["results"][0]["old_value"], changes["results"][0]["new_value"]) == (
        "SYNCED",
        "DISCONNECTED",
    )


# --- Connect --------------------------------------------------------------------------------


def test_oauth_connect_returns_link_and_request_is_readable(world):
    schedule = Schedule.objects.get(tenant=world.tenant_a, name="Ben A")
    provider = Provider.objects.get(tenant=world.tenant_a, calendar_type="GOOGLE")
    body = {"tenant": world.tenant_a.pk, "schedule": schedule.pk, "provider": provider.pk}

    response = api_client_for(world.operator).post("/api/v1/connect/oauth/", body)

    assert response.status_code == 201
    assert response.json()["oauth_url"].startswith(world.sandbox.url)
    assert response.json()["status"] == "pending"
    again = api_client_for(world.viewer).get(f"/api/v1/connect-requests/{response.json()['id']}/")
    assert again.json()["status"] == "pending"


def test_connect_refused_to_viewers_and_strangers(world):
    schedule = Schedule.objects.get(tenant=world.tenant_b, name="Ben B")
    provider = Provider.objects.get(tenant=world.tenant_b, calendar_type="GOOGLE")
    body = {"tenant": world.tenant_b.pk, "schedule": schedule.pk, "provider": provider.pk}
    mine = {"tenant": world.tenant_a.pk, "schedule": schedule.pk, "provider": provider.pk}

    assert api_client_for(world.operator).post("/api/v1/connect/oauth/", body).status_code == 404
    assert api_client_for(world.viewer).post("/api/v1/connect/oauth/", mine).status_code == 403
    wrong = api_client_for(world.operator).post("/api/v1/connect/oauth/", mine)
    assert wrong.status_code == 400
    assert set(wrong.json()["error"]["fields"]) == {"schedule", "provider"}


def test_credentials_connect_and_bad_password(world):
    schedule = Schedule.objects.get(tenant=world.tenant_a, name="Ben A")
    provider = Provider.objects.get(tenant=world.tenant_a, calendar_type="I_CAL")
    body = {
        "tenant": world.tenant_a.pk,
        "schedule": schedule.pk,
        "provider": provider.pk,
        "email": "ben@icloud.test",
    }
    client = api_client_for(world.operator)

    ok = client.post("/api/v1/connect/credentials/", {**body, "password": "pw-ok-123"})
    bad = client.post("/api/v1/connect/credentials/", {**body, "password": "wrong-pw-456"})

    assert ok.status_code == 201
    assert ok.json()["external_account_email"] == "ben@icloud.test"
    assert bad.status_code == 502
    assert bad.json()["error"]["wix"]["code"] == "BAD_CREDENTIALS"
    everything = (
        ok.content.decode() + bad.content.decode() + repr(list(AuditEvent.objects.values()))
    )
    assert "pw-ok-123" not in everything and "wrong-pw-456" not in everything


# --- Read-through and logs ------------------------------------------------------------------


def test_events_merged_and_paged(world):
    url = f"/api/v1/tenants/{world.tenant_a.pk}/events/"
    window = {"start": "2026-12-01T00:00:00Z", "end": "2027-01-15T00:00:00Z"}
    client = api_client_for(world.viewer)

    first = client.get(url, {**window, "limit": 5}).json()
    second = client.get(url, {**window, "limit": 5, "offset": first["next_offset"]}).json()

    assert first["count"] > 5
    assert len(first["events"]) == 5
    assert second["events"][0] != first["events"][0]
    assert first["failed_provider_ids"] == []


def test_events_bad_range_is_400(world):
    response = api_client_for(world.viewer).get(
        f"/api/v1/tenants/{world.tenant_a.pk}/events/",
        {"start": "2026-12-10T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"end": ["Must be after start."]}


def test_refresh_runs_and_audit_events_are_scoped(world):
    api_client_for(world.superuser).post(f"/api/v1/tenants/{world.tenant_b.pk}/verify/")
    client = api_client_for(world.viewer)

    runs = client.get("/api/v1/refresh-runs/").json()["results"]
    events = client.get("/api/v1/audit-events/").json()["results"]

    assert runs and {r["tenant"] for r in runs} == {world.tenant_a.pk}
    assert all(e["tenant"] == world.tenant_a.pk for e in events)


def test_schema_and_docs_are_served():
    schema = APIClient().get("/api/schema/")
    docs = APIClient().get("/api/docs/")

    assert schema.status_code == 200
    assert b"/api/v1/connections/{id}/sync-config/" in schema.content
    assert docs.status_code == 200


def test_user_without_tenants_is_403():
    response = api_client_for(staff_user("nobody")).get("/api/v1/tenants/")

    assert response.status_code == 403
    assert response.json()["error"]["message"] == "Your user has no tenants."


# --- Throttling -----------------------------------------------------------------------------


def test_a_token_over_its_rate_gets_429_and_other_tokens_do_not(world, monkeypatch):
    # DRF reads the rates into the class when it is imported; settings come too late.
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "3/min"})
    busy, other = api_client_for(world.viewer), api_client_for(world.viewer)

    allowed = [busy.get("/api/v1/tenants/").status_code for _ in range(3)]
    refused = busy.get("/api/v1/connections/")

    assert allowed == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert refused.json()["error"]["message"].startswith("Request was throttled.")
    assert 0 < int(refused["Retry-After"]) <= 60
    assert other.get("/api/v1/tenants/").status_code == 200
