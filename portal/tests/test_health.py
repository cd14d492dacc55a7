"""/healthz and `manage.py check_health`: the age of the last completed refresh pass, for an
uptime monitor and for cron; stale past 3 refresh intervals, never before a first pass."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connections import tasks
from connections.models import RefreshPass, RefreshRun
from connections.services import passes
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

URL = "/healthz"


def completed_pass(*, ago: timedelta) -> RefreshPass:
    """A pass of one tenant that completed `ago` (and started a minute before)."""
    closed = timezone.now() - ago
    started = closed - timedelta(minutes=1)
    return RefreshPass.objects.create(
        started_at=started,
        deadline_at=started + timedelta(minutes=15),
        expected=1,
        done=1,
        closed_at=closed,
        completed=True,
    )


def check_health() -> tuple[int, str]:
    """check_health's exit status and output."""
    out = io.StringIO()
    try:
        call_command("check_health", stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    return 0, out.getvalue()


def test_ok_with_the_age_of_the_last_completed_pass(client):
    completed_pass(ago=timedelta(minutes=4))

    response = client.get(URL)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "last_pass_age_seconds": 240}
    assert "no-cache" in response["Cache-Control"]


def test_stale_after_three_refresh_intervals(client, settings):
    settings.REFRESH_INTERVAL_MINUTES = 15
    completed_pass(ago=timedelta(minutes=45, seconds=30))

    response = client.get(URL)

    assert response.status_code == 503
    assert response.json() == {"status": "stale", "last_pass_age_seconds": 2730}


def test_not_stale_within_three_intervals(client, settings):
    settings.REFRESH_INTERVAL_MINUTES = 5
    completed_pass(ago=timedelta(minutes=14))

    assert client.get(URL).json() == {"status": "ok", "last_pass_age_seconds": 840}


def test_never_before_a_pass_completed(client):
    # One pass still running, one closed at its deadline with tenants missing.
    passes.pass_start(3, trigger="schedule")
    overdue = passes.pass_start(3, trigger="schedule", now=timezone.now() - timedelta(hours=1))
    assert passes.passes_close_overdue() == 1
    overdue.refresh_from_db()
    assert overdue.closed_at is not None

    response = client.get(URL)

    assert response.status_code == 503
    assert response.json() == {"status": "never", "last_pass_age_seconds": None}


def test_passes_closed_incomplete_do_not_count(client):
    completed_pass(ago=timedelta(hours=2))
    passes.pass_start(2, trigger="schedule", now=timezone.now() - timedelta(minutes=20))
    passes.passes_close_overdue()

    response = client.get(URL)

    assert response.status_code == 503
    assert response.json() == {"status": "stale", "last_pass_age_seconds": 7200}


def test_a_beat_pass_makes_it_ok(client, wix_sandbox):
    site = wix_sandbox.add_site(name="Salon Aurora")
    TenantFactory(site_id=site.id, api_key=wix_sandbox.create_api_key(site.account_id))
    assert client.get(URL).status_code == 503

    tasks.refresh_all()

    response = client.get(URL)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "last_pass_age_seconds": 0}


def test_head_answers_the_status_without_a_body(client):
    assert client.head(URL).status_code == 503
    completed_pass(ago=timedelta(minutes=1))

    response = client.head(URL)

    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_only_get_and_head(client, method):
    response = getattr(client, method)(URL)

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_it_reads_one_row_and_changes_nothing(client, admin_user):
    """No login, no session, no cookie; one SELECT; no tenant or count in the answer."""
    completed_pass(ago=timedelta(minutes=2))
    TenantFactory(name="Salon Aurora")
    before = (RefreshPass.objects.count(), RefreshRun.objects.count(), Session.objects.count())

    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)

    assert response.status_code == 200
    assert [q["sql"].split()[0] for q in queries] == ["SELECT"]
    assert response.cookies == {}
    assert (RefreshPass.objects.count(), RefreshRun.objects.count(), Session.objects.count()) == (
        before
    )
    assert set(response.json()) == {"status", "last_pass_age_seconds"}
    assert b"Salon Aurora" not in response.content


def test_a_logged_in_user_gets_the_same_answer(admin_client):
    completed_pass(ago=timedelta(minutes=3))

    assert admin_client.get(URL).json() == {"status": "ok", "last_pass_age_seconds": 180}


def test_throttled_per_address_past_sixty_a_minute(client):
    completed_pass(ago=timedelta(minutes=1))
    answers = [client.get(URL, REMOTE_ADDR="203.0.113.7").status_code for _ in range(61)]

    assert answers == [200] * 60 + [429]
    refused = client.get(URL, REMOTE_ADDR="203.0.113.7")
    assert refused.status_code == 429
    assert refused.json() == {"status": "throttled"}
    assert 1 <= int(refused["Retry-After"]) <= 60
    # Another address has its own budget.
    assert client.get(URL, REMOTE_ADDR="203.0.113.8").status_code == 200


def test_the_rate_is_a_setting(client, settings):
    settings.HEALTH_THROTTLE_RATE = "2/min"

    answers = [client.get(URL).status_code for _ in range(3)]

    assert answers == [503, 503, 429]


def test_check_health_ok(settings):
    completed_pass(ago=timedelta(minutes=4))

    status, output = check_health()

    assert status == 0
    assert output == "ok: the last refresh pass completed 4 minutes ago (240 s)\n"


def test_check_health_stale_exits_1(settings):
    settings.REFRESH_INTERVAL_MINUTES = 15
    completed_pass(ago=timedelta(hours=2, minutes=5))

    status, output = check_health()

    assert status == 1
    assert output == (
        "stale: the last refresh pass completed 2 hours, 5 minutes ago (7500 s); "
        "stale after 45 minutes\n"
    )


def test_check_health_never_exits_1():
    status, output = check_health()

    assert status == 1
    assert output == "never: no refresh pass has completed yet\n"
