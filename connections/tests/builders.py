"""Builders the connections tests share (and the apps above them): sandbox sites with staff
and connections, their tenants refreshed, the API's two-tenant world, answering Wix's OAuth
consent page, and driving and reading the admin.

Users, their clients and the admin's messages are `tenants.tests.builders`' (`staff_user`,
`superuser`, `admin_client_for`, `api_client_for`, `messages_of`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import requests
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import NoReverseMatch, reverse

from connections.models import Connection, Provider, Schedule
from connections.services.refresh import tenant_refresh
from tenants.models import Tenant
from tenants.tests.builders import sandbox_tenant, staff_user, superuser

CHANGELIST = "admin:connections_connection_changelist"
# What a staff member types as their calendar's password (Apple iCal connects by password).
CALENDAR_PASSWORD = "s3cret-calendar-pw"


# --- Sandbox sites and their tenants -------------------------------------------------------------


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
    sandbox,
    name: str,
    staff: list[dict] | None = None,
    *,
    premium: bool = True,
    providers: list[dict] = (),
) -> Site:
    """Add a site whose staff each get a schedule and, with `calendar_type` or `provider_id`,
    a connection (the other keys go to `add_connection`).

    Without `staff`, one member, "<name> staff", on Google as staff@<name>.test. `providers`
    are added to Wix's default ones (Google, Microsoft, Apple iCal) first.
    """
    if staff is None:
        staff = [
            {
                "name": f"{name} staff",
                "calendar_type": "GOOGLE",
                "email": f"staff@{name.lower()}.test",
            }
        ]
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


def google_staff(count: int) -> list[dict]:
    """`count` staff members for `add_site`, "Staff 0", "Staff 1"..., each on Google."""
    return [{"name": f"Staff {n}", "calendar_type": "GOOGLE"} for n in range(count)]


def refreshed_tenant(sandbox, site, **fields) -> Tenant:
    """The tenant reaching the sandbox `site` by API key (named as the site unless `fields`
    say otherwise), its mirror refreshed; the refresh must succeed."""
    tenant = sandbox_tenant(sandbox, site, **fields)
    run = tenant_refresh(tenant)
    assert run.outcome == "ok", run.error_message
    return tenant


def connection(tenant: Tenant, staff_name: str) -> Connection:
    """The mirrored connection of `staff_name`'s schedule."""
    return Connection.objects.select_related("tenant", "provider", "schedule").get(
        tenant=tenant, schedule__name=staff_name
    )


# --- The API's world -----------------------------------------------------------------------------


@dataclass
class ApiWorld:
    """Tenants A and B on the sandbox, each with Anna (Google, synced) and Ben (Microsoft,
    broken: TOKEN_REVOKED), refreshed; olga operates A, victor views A, root is a superuser."""

    sandbox: object
    site_a: Site
    site_b: Site
    tenant_a: Tenant
    tenant_b: Tenant
    operator: object
    viewer: object
    superuser: object


def api_world(sandbox) -> ApiWorld:
    """Build the `ApiWorld` on `sandbox` (the `world` fixture of the root conftest)."""
    sites, tenants = {}, {}
    for name in ("A", "B"):
        wix_site = sandbox.add_site(name=f"Site {name}")
        site = Site(wix_site.id, wix_site.account_id, wix_site.name)
        # Both schedules before their connections: the sandbox's ids come in creation order.
        for staff_name in (f"Anna {name}", f"Ben {name}"):
            site.schedules[staff_name] = sandbox.add_schedule(site.id, name=staff_name)
        site.connections[f"Anna {name}"] = sandbox.add_connection(
            site.id,
            schedule_id=site.schedules[f"Anna {name}"],
            calendar_type="GOOGLE",
            status="SYNCED",
            import_mode="PRIMARY",
            export_mode="DEDICATED",
        )
        site.connections[f"Ben {name}"] = sandbox.add_connection(
            site.id,
            schedule_id=site.schedules[f"Ben {name}"],
            calendar_type="MICROSOFT",
            status="ERROR",
            error_reason="TOKEN_REVOKED",
        )
        sites[name] = site
        tenants[name] = refreshed_tenant(sandbox, site, name=f"Tenant {name}")
    return ApiWorld(
        sandbox=sandbox,
        site_a=sites["A"],
        site_b=sites["B"],
        tenant_a=tenants["A"],
        tenant_b=tenants["B"],
        operator=staff_user("olga", operator_of=(tenants["A"],)),
        viewer=staff_user("victor", viewer_of=(tenants["A"],)),
        superuser=superuser(),
    )


def connect_body(tenant: Tenant, calendar_type: str = "GOOGLE", /, **fields) -> dict:
    """An API body connecting the first schedule of `tenant` (by id) to its provider of
    `calendar_type`; `fields` add to it or replace its values (`tenant=` too)."""
    return {
        "tenant": tenant.pk,
        "schedule": Schedule.objects.filter(tenant=tenant).order_by("pk").first().pk,
        "provider": Provider.objects.get(tenant=tenant, calendar_type=calendar_type).pk,
        **fields,
    }


# --- Wix's OAuth consent page --------------------------------------------------------------------


def consent(oauth_url: str, answer: str) -> str:
    """Answer the sandbox's consent page ("approve", "refuse", ...); return where it sends
    the owner (the portal's return URL, with Wix's query)."""
    response = requests.post(oauth_url, data={"action": answer}, allow_redirects=False, timeout=5)
    assert response.status_code == 302
    return response.headers["Location"]


def path_of(location: str) -> str:
    """The path and query of an absolute URL, for the Django test client."""
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def query_of(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


# --- The admin -----------------------------------------------------------------------------------


def tenant_admin_url(name: str, *args) -> str:
    """A tenant admin page: "changelist", "change", "connect", "events"..."""
    return reverse(f"admin:tenants_tenant_{name}", args=args)


def connection_url(connection) -> str:
    """Where a connect lands: the connection's page, or the tenant's until that admin exists."""
    try:
        return reverse("admin:connections_connection_change", args=[connection.pk])
    except NoReverseMatch:
        return tenant_admin_url("change", connection.tenant_id)


def post_action(client, action: str, rows, *, confirm: bool = False, query: str = ""):
    """POST an action over `rows` to the connection changelist, as its form does."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(row.pk) for row in rows]}
    if confirm:
        data["post"] = "yes"
    else:
        data["index"] = "0"
    return client.post(reverse(CHANGELIST) + query, data)
