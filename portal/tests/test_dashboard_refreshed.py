"""The dashboard says when the mirror was last refreshed (the last completed refresh pass),
in words, beside every count, for one query more."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connections.models import Connection, RefreshPass
from connections.services import passes
from portal import dashboard
from tenants.tests.builders import staff_user
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

INDEX = "/admin/"


def completed_pass(*, ago: timedelta) -> RefreshPass:
    closed = timezone.now() - ago
    return RefreshPass.objects.create(
        started_at=closed - timedelta(minutes=1),
        deadline_at=closed + timedelta(minutes=14),
        expected=1,
        done=1,
        closed_at=closed,
        completed=True,
    )


def add_connection(tenant, status: str, n: int) -> Connection:
    now = timezone.now()
    return Connection.objects.create(
        tenant=tenant,
        wix_id=f"conn-{tenant.pk}-{n}",
        schedule_wix_id=f"sched-{n}",
        calendar_type="GOOGLE",
        status=status,
        first_seen_at=now,
        last_seen_at=now,
        status_changed_at=now,
    )


def refreshed_spans(html: str, words: str) -> int:
    return html.count(f">{words}</span>")


@pytest.fixture
def tenant():
    tenant = TenantFactory(name="Salon Aurora")
    for n, status in enumerate(["SYNCED", "SYNCED", "ERROR"]):
        add_connection(tenant, status, n)
    return tenant


def test_never_refreshed_before_the_first_pass(admin_client, tenant):
    # A pass still running, and one closed at its deadline, are no refresh of the mirror.
    passes.pass_start(1, trigger="schedule")
    passes.pass_start(1, trigger="schedule", now=timezone.now() - timedelta(hours=1))
    passes.passes_close_overdue()

    page = admin_client.get(INDEX)

    d = page.context["dashboard"]
    assert (d.refreshed, d.refreshed_at) == ("never refreshed", None)
    html = page.content.decode()
    # "All connections", each status card, and the two tables' captions.
    assert refreshed_spans(html, "never refreshed") == len(d.totals) + 3
    assert "refreshed\xa0" not in html


def test_refreshed_minutes_ago_beside_every_count(admin_client, tenant):
    refresh_pass = completed_pass(ago=timedelta(minutes=4, seconds=10))

    page = admin_client.get(INDEX)

    d = page.context["dashboard"]
    assert d.refreshed == "refreshed 4\xa0minutes ago"
    assert d.refreshed_at == refresh_pass.closed_at
    html = page.content.decode()
    assert refreshed_spans(html, "refreshed 4\xa0minutes ago") == len(d.totals) + 3
    assert 'class="portal-refreshed" title="' in html
    assert "never refreshed</span>" not in html


def test_refreshed_just_now_and_hours_ago(admin_user, tenant):
    completed_pass(ago=timedelta(hours=3, minutes=2))
    assert dashboard.build(admin_user).refreshed == "refreshed 3\xa0hours, 2\xa0minutes ago"

    completed_pass(ago=timedelta(seconds=20))
    assert dashboard.build(admin_user).refreshed == "refreshed just now"


def test_one_query_more_than_before(django_user_model, tenant):
    """Six queries before (test_dashboard.py), seven with the last completed pass, with a
    pass or without."""
    others = [TenantFactory() for _ in range(dashboard.STALE_LIMIT + 1)]
    user = staff_user("staff", viewer_of=(tenant, *others))

    with CaptureQueriesContext(db_connection) as without_pass:
        d = dashboard.build(user)
        [s.tenant.name for s in d.stale]
    completed_pass(ago=timedelta(minutes=1))
    user = django_user_model.objects.get(pk=user.pk)  # roles are cached on the user
    with CaptureQueriesContext(db_connection) as with_pass:
        d = dashboard.build(user)
        [s.tenant.name for s in d.stale]

    assert len(without_pass) == len(with_pass) == 7
    assert d.refreshed == "refreshed 1\xa0minute ago"
