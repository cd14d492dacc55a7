"""Builders every app's tests share: staff users and their memberships, the clients they
use, the admin's messages, tenants reaching a sandbox site, and waiting for a worker.
Model rows without a story come from `factories.py`; these are plain functions.

    olga = staff_user("olga", operator_of=(tenant_a,), viewer_of=(tenant_b,))
    admin_client_for(olga).get("/admin/")        # Django's test client, logged in
    api_client_for(olga).get("/api/v1/tenants/")  # DRF's APIClient with a knox token
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from tenants.models import Role, Tenant, TenantMembership
from tenants.tests.factories import TenantFactory

# --- Users ---------------------------------------------------------------------------------------


def staff_user(
    username: str,
    *,
    operator_of: Iterable[Tenant] = (),
    viewer_of: Iterable[Tenant] = (),
    **fields,
):
    """A staff user without model permissions, operator of `operator_of` and viewer of
    `viewer_of`; `fields` go to `create_user` (`password=...`, `is_superuser=True`)."""
    user = get_user_model().objects.create_user(username, is_staff=True, **fields)
    for role, tenants in ((Role.OPERATOR, operator_of), (Role.VIEWER, viewer_of)):
        for tenant in tenants:
            TenantMembership.objects.create(user=user, tenant=tenant, role=role)
    return user


def superuser(username: str = "root", *, password: str | None = None):
    """An agency admin: a superuser, `<username>@example.com`, no password unless given."""
    return get_user_model().objects.create_superuser(username, f"{username}@example.com", password)


# --- Their clients, and what the admin told them -------------------------------------------------


def admin_client_for(user) -> Client:
    """Django's test client, logged in as `user` (the admin's way in)."""
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    """The messages the request left, in order; they are then dropped, as a page shows them."""
    found = [str(m.message) for m in get_messages(response.wsgi_request)]
    response.client.cookies.pop("messages", None)
    return found


def api_token(user) -> str:
    """A new knox API token of `user`, as the client sends it."""
    return AuthToken.objects.create(user=user)[1]


def api_client_for(user) -> APIClient:
    """DRF's APIClient sending a new API token of `user` (the API's way in)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(user)}")
    return client


# --- Tenants on the sandbox ----------------------------------------------------------------------


def sandbox_tenant(sandbox, site, **fields) -> Tenant:
    """A tenant reaching the sandbox `site` by a new API key of its account, named as the
    site unless `fields` say otherwise; not refreshed (see connections.tests.builders)."""
    return TenantFactory(
        **{
            "name": site.name,
            "site_id": site.id,
            "api_key": sandbox.create_api_key(site.account_id),
            **fields,
        }
    )


# --- Waiting for other processes -----------------------------------------------------------------


def wait_until(condition: Callable[[], object], timeout: float = 30.0) -> None:
    """Return once `condition()` is true (asked every 0.05 s); AssertionError after `timeout`
    seconds. For what a worker process or thread does meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
