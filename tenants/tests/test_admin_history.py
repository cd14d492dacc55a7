"""History pages answer 404 alike for another tenant's object, a missing one and a non-id."""

import pytest
from django.urls import reverse

from tenants.tests.builders import staff_user
from tenants.tests.factories import TenantFactory, WixAppFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_and_other(client):
    """Tenants A and B; `client` is logged in as olga, an operator of A only."""
    own, other = TenantFactory(name="A"), TenantFactory(name="B")
    client.force_login(staff_user("olga", operator_of=(own,)))
    return own, other


def history(object_id, version_id=None) -> str:
    if version_id is None:
        return reverse("admin:tenants_tenant_history", args=[object_id])
    return reverse("admin:tenants_tenant_simple_history", args=[object_id, version_id])


def test_another_tenants_history_is_a_404_like_a_missing_one(client, own_and_other):
    own, other = own_and_other
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
def test_ids_that_are_not_ids_are_404s(client, own_and_other, object_id, version_id):
    own, _ = own_and_other
    object_id = object_id.format(own=own.pk)

    assert client.get(history(object_id, version_id)).status_code == 404


def test_superuser_only_histories_are_404s_for_staff(client, own_and_other):
    app = WixAppFactory()

    response = client.get(reverse("admin:tenants_wixapp_history", args=[app.pk]))

    assert response.status_code == 404
