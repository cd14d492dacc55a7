"""The database keeps one live issue per problem: the Issue model's constraints."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from connections.models import Connection, Issue, IssueKind, IssueState
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection():
    now = timezone.now()
    return Connection.objects.create(
        tenant=TenantFactory(),
        wix_id="c-1",
        first_seen_at=now,
        last_seen_at=now,
        status_changed_at=now,
        status="ERROR",
        calendar_type="GOOGLE",
    )


def issue(tenant, connection=None, *, kind=IssueKind.CONNECTION_ERROR, **fields) -> Issue:
    now = timezone.now()
    return Issue.objects.create(
        tenant=tenant,
        connection=connection,
        kind=kind,
        first_seen_at=now,
        last_seen_at=now,
        opened_at=now,
        **fields,
    )


def refused(**kwargs) -> bool:
    try:
        with transaction.atomic():
            issue(**kwargs)
    except IntegrityError:
        return True
    return False


@pytest.mark.parametrize(
    ("first_state", "second_state", "is_refused"),
    [
        (IssueState.OPEN, IssueState.OPEN, True),
        (IssueState.MUTED, IssueState.OPEN, True),  # muted is still live
        (IssueState.RESOLVED, IssueState.OPEN, False),
        (IssueState.RESOLVED, IssueState.RESOLVED, False),
    ],
)
def test_one_live_issue_per_connection_and_kind(connection, first_state, second_state, is_refused):
    until = timezone.now() + timezone.timedelta(days=1)
    mute = {"muted_until": until} if first_state == IssueState.MUTED else {}
    issue(connection.tenant, connection, state=first_state, **mute)

    second = refused(tenant=connection.tenant, connection=connection, state=second_state)
    assert second is is_refused


def test_another_kind_or_connection_may_be_live_at_once(connection):
    issue(connection.tenant, connection)
    issue(connection.tenant, connection, kind=IssueKind.CONNECTION_STUCK)
    other = Connection.objects.get(pk=connection.pk)
    other.pk, other.wix_id = None, "c-2"
    other.save()
    issue(connection.tenant, other)

    assert Issue.objects.filter(state=IssueState.OPEN).count() == 3


def test_one_live_issue_per_tenant_and_kind(connection):
    tenant = connection.tenant
    issue(tenant, kind=IssueKind.TENANT_CREDENTIALS)

    assert refused(tenant=tenant, kind=IssueKind.TENANT_CREDENTIALS)
    assert not refused(tenant=tenant, kind=IssueKind.TENANT_REFRESH_FAILING)
    assert not refused(tenant=TenantFactory(), kind=IssueKind.TENANT_CREDENTIALS)
    Issue.objects.filter(kind=IssueKind.TENANT_CREDENTIALS).update(
        state=IssueState.RESOLVED, resolved_at=timezone.now()
    )
    assert not refused(tenant=tenant, kind=IssueKind.TENANT_CREDENTIALS)


def test_connection_kinds_need_a_connection_and_tenant_kinds_none(connection):
    tenant = connection.tenant
    assert refused(tenant=tenant, kind=IssueKind.CONNECTION_ERROR)
    assert refused(tenant=tenant, connection=connection, kind=IssueKind.TENANT_STALE)


def test_a_mute_has_an_expiry(connection):
    assert refused(tenant=connection.tenant, connection=connection, state=IssueState.MUTED)
