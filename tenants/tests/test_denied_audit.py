"""Refused attempts are audited as DENIED, once per user, action and tenant per window."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from tenants.models import AuditEvent, AuditOutcome
from tenants.tests.builders import api_client_for, staff_user
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer():
    """victor, a viewer of tenant "Viewed" (`viewer.viewed`)."""
    tenant = TenantFactory(name="Viewed")
    user = staff_user("victor", viewer_of=(tenant,))
    user.viewed = tenant
    return user


def test_a_viewers_refused_api_action_is_audited_once_per_window(viewer):
    client = api_client_for(viewer)

    answers = [
        client.post(f"/api/v1/tenants/{viewer.viewed.pk}/deactivate/").status_code for _ in range(5)
    ]

    assert answers == [403] * 5
    event = AuditEvent.objects.get(outcome=AuditOutcome.DENIED)
    assert (event.username, event.tenant, event.action, event.via) == (
        "victor",
        viewer.viewed,
        "tenant.deactivate",
        "api",
    )
    viewer.viewed.refresh_from_db()
    assert viewer.viewed.is_active


def test_an_admin_action_on_a_tenant_one_only_views_is_audited(client):
    viewed, operated = TenantFactory(name="Viewed"), TenantFactory(name="Operated")
    user = staff_user("olga", operator_of=(operated,), viewer_of=(viewed,))
    client.force_login(user)

    client.post(
        reverse("admin:tenants_tenant_changelist"),
        {"action": "verify_credentials", ACTION_CHECKBOX_NAME: [viewed.pk]},
    )

    event = AuditEvent.objects.get(outcome=AuditOutcome.DENIED)
    assert (event.username, event.action, event.via) == (
        "olga",
        "tenant.verify_credentials",
        "admin",
    )


def test_a_viewers_forged_change_form_is_refused_and_audited(client, viewer):
    client.force_login(viewer)

    response = client.post(
        reverse("admin:tenants_tenant_change", args=[viewer.viewed.pk]),
        {"name": "Forged", "site_id": viewer.viewed.site_id, "is_active": "on"},
    )

    assert response.status_code == 403
    event = AuditEvent.objects.get(outcome=AuditOutcome.DENIED)
    assert (event.action, event.tenant, event.via) == ("tenant.change", viewer.viewed, "admin")
    viewer.viewed.refresh_from_db()
    assert viewer.viewed.name == "Viewed"
