"""A sandbox site with two staff connections, and the tenant that reaches it by API key."""

from __future__ import annotations

import pytest

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
