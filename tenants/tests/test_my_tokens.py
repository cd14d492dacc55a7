"""/api/v1/me/tokens/: any staff user lists and revokes their own API tokens, nobody else's;
tokens of users no longer staff or active are refused."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from knox.models import AuthToken
from rest_framework.test import APIClient

from tenants.models import AuditEvent
from tenants.tests.builders import api_client_for, staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def loner():
    """A staff user without tenants."""
    return staff_user("lone")


def test_any_staff_user_lists_only_their_own_tokens(world, loner):
    api_client_for(world.operator)
    client = api_client_for(loner)
    mine = AuthToken.objects.get(user=loner)

    response = client.get("/api/v1/me/tokens/")

    assert response.status_code == 200
    assert response.json() == [
        {
            "token_key": mine.token_key,
            "created": response.json()[0]["created"],
            "expiry": response.json()[0]["expiry"],
            "current": True,
        }
    ]
    assert mine.digest not in response.content.decode()


def test_a_user_revokes_their_own_token_and_nobody_elses(world, loner):
    theirs = api_client_for(world.operator)
    theirs_key = AuthToken.objects.get(user=world.operator).token_key
    client, spare = api_client_for(loner), api_client_for(loner)
    mine = AuthToken.objects.filter(user=loner).order_by("created").first()

    foreign = client.delete(f"/api/v1/me/tokens/{theirs_key}/")
    missing = client.delete("/api/v1/me/tokens/0123456789abcde/")
    revoked = spare.delete(f"/api/v1/me/tokens/{mine.token_key}/")

    assert (foreign.status_code, missing.status_code) == (404, 404)
    assert foreign.content == missing.content
    assert revoked.status_code == 204
    assert client.get("/api/v1/me/tokens/").status_code == 401
    assert spare.get("/api/v1/me/tokens/").status_code == 200
    assert theirs.get("/api/v1/me/tokens/").status_code == 200
    event = AuditEvent.objects.get(action="revoke_api_token")
    assert (event.username, event.via) == ("lone", "api")


def test_the_token_routes_refuse_users_who_are_not_staff(world, django_user_model):
    user = django_user_model.objects.create_user("plain")
    client = APIClient()
    client.force_login(user)

    response = client.get("/api/v1/me/tokens/")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_tokens_of_users_no_longer_staff_or_active_are_refused(world):
    """(Needs DEFAULT_AUTHENTICATION_CLASSES on portal.api.authentication.)"""
    for change in ({"is_staff": False}, {"is_active": False}):
        client = api_client_for(world.operator)
        get_user_model().objects.filter(pk=world.operator.pk).update(**change)

        response = client.get("/api/v1/tenants/")

        assert response.status_code == 401
        assert response.json() == {
            "error": {
                "code": "authentication_failed",
                "message": "This token's user may no longer use the API.",
            }
        }
        get_user_model().objects.filter(pk=world.operator.pk).update(is_staff=True, is_active=True)


def test_a_session_user_without_tenants_lists_none_of_the_tokens(loner):
    client = APIClient()
    client.force_login(loner)
    api_client_for(loner)

    response = client.get("/api/v1/me/tokens/")

    assert response.status_code == 200
    assert [t["current"] for t in response.json()] == [False]
