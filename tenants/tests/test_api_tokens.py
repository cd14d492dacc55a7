"""API tokens in the admin: superusers create one (shown once), list and revoke them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tenants.models import AuditEvent
from tenants.tests.builders import staff_user, superuser
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

ADD_URL = "admin:knox_authtoken_add"
LIST_URL = "admin:knox_authtoken_changelist"


@pytest.fixture
def root(client):
    """`client`, logged in as a superuser."""
    client.force_login(superuser())
    return client


@pytest.fixture
def olga():
    return staff_user("olga", operator_of=(TenantFactory(),))


def create_token(client, user, days=30) -> str:
    """Add a token through the admin; return the token the page showed."""
    response = client.post(reverse(ADD_URL), {"user": user.pk, "expiry_days": days})
    assert response.status_code == 200
    token = response.context["token"]
    assert token in response.content.decode()
    return token


def api_status(token: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/v1/tenants/").status_code


def test_created_token_is_shown_once_and_works(root, olga):
    token = create_token(root, olga, days=30)

    saved = AuthToken.objects.get(user=olga)
    assert token.startswith(saved.token_key)
    assert saved.digest != token
    assert timezone.now() + timedelta(days=29) < saved.expiry <= timezone.now() + timedelta(days=30)
    assert api_status(token) == 200
    for page in (reverse(LIST_URL), reverse("admin:knox_authtoken_change", args=[saved.pk])):
        assert token not in root.get(page).content.decode()
    assert AuditEvent.objects.get(action="create_api_token").target_repr == "olga"


def test_created_page_is_not_cached_and_nothing_goes_to_messages(root, olga):
    response = root.post(reverse(ADD_URL), {"user": olga.pk, "expiry_days": 0})

    assert "no-store" in response["Cache-Control"]
    assert list(response.context["messages"]) == []
    assert AuthToken.objects.get(user=olga).expiry is None


def test_list_shows_user_and_prefix_never_the_token(root, olga):
    """(The digest, knox's primary key, is in the links: a hash, useless as a token.)"""
    token = create_token(root, olga)
    saved = AuthToken.objects.get(user=olga)

    page = root.get(reverse(LIST_URL)).content.decode()

    assert f"{saved.token_key}…" in page
    assert "olga" in page
    assert token not in page


def test_revoking_deletes_after_confirmation_and_the_token_is_401(root, olga):
    token = create_token(root, olga)
    saved = AuthToken.objects.get(user=olga)
    delete_url = reverse("admin:knox_authtoken_delete", args=[saved.pk])

    confirmation = root.get(delete_url)
    assert api_status(token) == 200
    root.post(delete_url, {"post": "yes"})

    assert f"{saved.token_key}… of olga" in confirmation.content.decode()
    assert not AuthToken.objects.filter(user=olga).exists()
    assert api_status(token) == 401
    assert AuditEvent.objects.filter(action="revoke_api_token").count() == 1


def test_revoking_several_from_the_list(root, olga):
    tokens = [create_token(root, olga), create_token(root, olga)]

    root.post(
        reverse(LIST_URL),
        {
            "action": "delete_selected",
            "_selected_action": list(AuthToken.objects.values_list("pk", flat=True)),
            "post": "yes",
        },
    )

    assert [api_status(t) for t in tokens] == [401, 401]
    assert AuditEvent.objects.filter(action="revoke_api_token").count() == 2


def test_tokens_cannot_be_edited(root, olga):
    create_token(root, olga)
    saved = AuthToken.objects.get(user=olga)

    root.post(reverse("admin:knox_authtoken_change", args=[saved.pk]), {"user": olga.pk})

    assert AuthToken.objects.get(pk=saved.pk).user == olga


@pytest.mark.parametrize(
    "page", [LIST_URL, ADD_URL, "admin:knox_authtoken_change", "admin:knox_authtoken_delete"]
)
def test_staff_who_are_not_superusers_cannot(client, olga, page):
    other, _ = AuthToken.objects.create(user=olga)
    olga.user_permissions.set([])  # even with every knox permission they would not
    client.force_login(olga)
    args = [other.pk] if page.endswith(("change", "delete")) else []

    get = client.get(reverse(page, args=args))
    post = client.post(reverse(page, args=args), {"user": olga.pk, "expiry_days": 1, "post": "yes"})

    assert get.status_code in (302, 403)
    assert post.status_code in (302, 403)
    assert AuthToken.objects.count() == 1
    assert "knox" not in client.get(reverse("admin:index")).content.decode().lower()
