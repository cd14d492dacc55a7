"""History pages answer 404 alike for another tenant's object, a missing one and a non-id."""

import pytest
from django.urls import reverse

from tenants.models import Role, TenantMembership
from tenants.tests.factories import TenantFactory, WixAppFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_of_a(client, django_user_model):
    own, other = TenantFactory(name="A"), TenantFactory(name="B")
    user = django_user_model.objects.create_user("olga", is_staff=True)
    TenantMembership.objects.create(user=user, tenant=own, role=Role.OPERATOR)
    client.force_login(user)
    return own, other


def history(object_id, version_id=None) -> str:
    if version_id is None:
        return reverse("admin:tenants_tenant_history", args=[object_id])
    return reverse("admin:tenants_tenant_simple_history", args=[object_id, version_id])


def test_another_tenants_history_is_a_404_like_a_missing_one(client, operator_of_a):
    own, other = operator_of_a
    version = other.history.latest().history_id

    assert client.get(history(own.pk)).status_code == 200
    for path in (
        history(other.pk),
        history(other.pk, version),
        history(other.pk + 1000),
        history(other.pk + 1000, version),
    ):
        assert client.get(path).status_code == 404, path


@pytest.mark.parametrize(
    "object_id, version_id",
    [("abc", None), ("99999999999999999999", None), ("{own}", "abc"), ("{own}", "-1")],
)
def test_ids_that_are_not_ids_are_404s(client, operator_of_a, object_id, version_id):
    own, _ = operator_of_a
    object_id = object_id.format(own=own.pk)

    assert client.get(history(object_id, version_id)).status_code == 404


def test_superuser_only_histories_are_404s_for_staff(client, operator_of_a):
    app = WixAppFactory()

    response = client.get(reverse("admin:tenants_wixapp_history", args=[app.pk]))

    assert response.status_code == 404
