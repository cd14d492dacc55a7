"""Helpers for admin tests: sandbox sites, refreshed tenants, staff with memberships, actions."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.urls import reverse

from connections.models import Connection
from connections.services.refresh import tenant_refresh
from tenants.models import Role, Tenant, TenantMembership
from tenants.tests.factories import TenantFactory

CHANGELIST = "admin:connections_connection_changelist"


@dataclass
class Site:
    """A sandbox site and its ids: `schedules` and `connections` by staff name."""

    id: str
    account_id: str
    name: str
    schedules: dict[str, str] = field(default_factory=dict)
    connections: dict[str, str] = field(default_factory=dict)
    providers: dict[str, str] = field(default_factory=dict)


def add_site(
    sandbox, name: str, staff: list[dict], *, premium: bool = True, providers: list[dict] = ()
) -> Site:
    """Add a site whose staff each get a schedule and, with `calendar_type`, a connection.

    `providers` are added to Wix's default ones (Google, Microsoft, Apple iCal) first.
    """
    wix_site = sandbox.add_site(name=name, premium=premium)
    for provider in providers:
        sandbox.add_provider(wix_site.id, **provider)
    site = Site(wix_site.id, wix_site.account_id, name, providers=dict(wix_site.providers))
    for person in staff:
        person = dict(person)
        staff_name = person.pop("name")
        site.schedules[staff_name] = sandbox.add_schedule(site.id, name=staff_name)
        if "calendar_type" in person or "provider_id" in person:
            site.connections[staff_name] = sandbox.add_connection(
                site.id, schedule_id=site.schedules[staff_name], **person
            )
    return site


def tenant_for(sandbox, site: Site) -> Tenant:
    """A tenant reaching `site` by API key, its mirror refreshed."""
    tenant = TenantFactory(
        name=site.name, site_id=site.id, api_key=sandbox.create_api_key(site.account_id)
    )
    run = tenant_refresh(tenant)
    assert run.outcome == "ok", run.error_message
    return tenant


def staff(username: str, **roles: tuple[Tenant, ...]):
    """A staff user without model permissions, a member of tenants by role.

    staff("olga", operator=(tenant_a,), viewer=(tenant_b,))
    """
    user = get_user_model().objects.create_user(username, is_staff=True)
    for role, tenants in roles.items():
        for tenant in tenants:
            TenantMembership.objects.create(user=user, tenant=tenant, role=Role(role))
    return user


def connection(tenant: Tenant, staff_name: str) -> Connection:
    return Connection.objects.select_related("tenant", "provider", "schedule").get(
        tenant=tenant, schedule__name=staff_name
    )


def post_action(client, action: str, rows, *, confirm: bool = False, query: str = ""):
    """POST an action over `rows` to the connection changelist, as its form does."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(row.pk) for row in rows]}
    if confirm:
        data["post"] = "yes"
    else:
        data["index"] = "0"
    return client.post(reverse(CHANGELIST) + query, data)


def messages_of(response) -> list[str]:
    """The messages the request left, in order; they are then dropped, as a page shows them."""
    found = [str(m.message) for m in get_messages(response.wsgi_request)]
    response.client.cookies.pop("messages", None)
    return found
