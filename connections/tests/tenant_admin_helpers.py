"""Helpers for the tenant control room tests: staff members, their clients, admin URLs."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import NoReverseMatch, reverse

from connections.services.refresh import tenant_refresh
from tenants.models import TenantMembership
from tenants.tests.factories import TenantFactory

PASSWORD = "s3cret-calendar-pw"


def member(username: str, *tenants, role: str = "operator"):
    """A staff user (no model permissions) who is a member of `tenants` with `role`."""
    user = get_user_model().objects.create_user(username, is_staff=True)
    for tenant in tenants:
        TenantMembership.objects.create(user=user, tenant=tenant, role=role)
    return user


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(name: str, *args) -> str:
    return reverse(f"admin:tenants_tenant_{name}", args=args)


def connection_url(connection) -> str:
    """Where a connect lands: the connection's page, or the tenant's until that admin exists."""
    try:
        return reverse("admin:connections_connection_change", args=[connection.pk])
    except NoReverseMatch:
        return url("change", connection.tenant_id)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def mirrored_site(wix_sandbox, name: str):
    """A sandbox site with one schedule and connection, and its refreshed tenant."""
    site = wix_sandbox.add_site(name=name)
    schedule = wix_sandbox.add_schedule(site.id, name=f"{name} staff")
    wix_sandbox.add_connection(site.id, schedule_id=schedule, email=f"staff@{name.lower()}.test")
    tenant = TenantFactory(
        name=name, site_id=site.id, api_key=wix_sandbox.create_api_key(site.account_id)
    )
    tenant_refresh(tenant)
    return site, tenant


def consent(oauth_url: str, action: str) -> str:
    """Answer the sandbox's consent page; return where it sends the owner (the return URL)."""
    answer = requests.post(oauth_url, data={"action": action}, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    return answer.headers["Location"]


def path_of(location: str) -> str:
    """The path and query of an absolute URL, for the Django test client."""
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def query_of(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)
