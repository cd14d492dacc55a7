"""Fixtures of the connections tests.

`site` and `tenant`: a sandbox site with two staff connections, and the tenant that reaches
it by API key (not refreshed); `mirrored` is that tenant refreshed, `operator` and `viewer`
its members.

`tenant_a` and `tenant_b`: the refreshed tenants of Salon Aurora (the module's `aurora`
site, whose staff each module picks) and of Studio Brisa (`brisa`); `operator_of_a` and
`viewer_of_a` are members of A only, logged in on the test's `client`.
"""

from __future__ import annotations

import pytest

from connections.services.refresh import tenant_refresh
from connections.tests.builders import Site, add_site, refreshed_tenant
from tenants.tests.builders import staff_user
from tenants.tests.factories import TenantFactory


@pytest.fixture
def site(wix_sandbox):
    site = wix_sandbox.add_site(name="Salon Aurora")
    site.anna = wix_sandbox.add_schedule(site.id, name="Anna Lee")
    site.ben = wix_sandbox.add_schedule(site.id, name="Ben Okafor")
    site.anna_google = wix_sandbox.add_connection(
        site.id,
        schedule_id=site.anna,
        calendar_type="GOOGLE",
        status="SYNCED",
        email="anna@example.com",
    )
    site.ben_microsoft = wix_sandbox.add_connection(
        site.id,
        schedule_id=site.ben,
        calendar_type="MICROSOFT",
        status="SYNCED",
        email="ben@example.com",
    )
    return site


@pytest.fixture
def tenant(wix_sandbox, site):
    return TenantFactory(site_id=site.id, api_key=wix_sandbox.create_api_key(site.account_id))


@pytest.fixture
def mirrored(tenant):
    """`tenant`, its mirror refreshed."""
    tenant_refresh(tenant)
    return tenant


@pytest.fixture
def operator(mirrored):
    """olga, an operator of `mirrored`."""
    return staff_user("olga", operator_of=(mirrored,))


@pytest.fixture
def viewer(mirrored):
    """victor, a viewer of `mirrored`."""
    return staff_user("victor", viewer_of=(mirrored,))


@pytest.fixture
def brisa(wix_sandbox) -> Site:
    """Studio Brisa: Farah Haddad on Google."""
    return add_site(
        wix_sandbox,
        "Studio Brisa",
        [{"name": "Farah Haddad", "calendar_type": "GOOGLE", "email": "farah@brisa.test"}],
    )


@pytest.fixture
def tenant_a(wix_sandbox, aurora):
    """The refreshed tenant of the module's `aurora` site."""
    return refreshed_tenant(wix_sandbox, aurora)


@pytest.fixture
def tenant_b(wix_sandbox, brisa):
    return refreshed_tenant(wix_sandbox, brisa)


@pytest.fixture
def operator_of_a(client, tenant_a, tenant_b):
    """olga, operator of Salon Aurora only, logged in on `client`."""
    user = staff_user("olga", operator_of=(tenant_a,))
    client.force_login(user)
    return user


@pytest.fixture
def viewer_of_a(client, tenant_a, tenant_b):
    """vera, viewer of Salon Aurora only, logged in on `client`."""
    user = staff_user("vera", viewer_of=(tenant_a,))
    client.force_login(user)
    return user
