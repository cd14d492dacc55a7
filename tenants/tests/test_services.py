"""verify_credentials against the sandbox: both ways in, each failure recorded plainly."""

import pytest

from tenants.models import CredentialsStatus, Via
from tenants.services.tenants import tenant_verify_credentials
from tenants.tests.factories import TenantFactory, WixAppFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(wix_sandbox):
    return wix_sandbox.add_site(name="Salon Aurora", premium=True)


def key_tenant(wix_sandbox, site, **kwargs):
    key = wix_sandbox.create_api_key(account_id=site.account_id)
    return TenantFactory(site_id=site.id, api_key=key, **kwargs)


def app_tenant(wix_sandbox, site, *, secret=None):
    app_id, real_secret = wix_sandbox.create_app()
    instance_id = wix_sandbox.install_app(app_id, site.id)
    app = WixAppFactory(app_id=app_id, app_secret=secret or real_secret)
    return TenantFactory(site_id=site.id, wix_app=app, instance_id=instance_id, api_key="")


def test_api_key_tenant_verifies(wix_sandbox, site):
    tenant = key_tenant(wix_sandbox, site)

    assert tenant_verify_credentials(tenant, user=None, via=Via.COMMAND) is True

    tenant.refresh_from_db()
    assert tenant.credentials_status == CredentialsStatus.OK
    assert tenant.credentials_error == ""
    assert tenant.credentials_checked_at is not None
    assert [r.path for r in wix_sandbox.requests] == ["/bookings/v2/external-calendars/providers"]


def test_app_tenant_verifies_with_a_fresh_token(wix_sandbox, site):
    tenant = app_tenant(wix_sandbox, site)

    assert tenant_verify_credentials(tenant, user=None, via=Via.COMMAND) is True
    assert tenant_verify_credentials(tenant, user=None, via=Via.COMMAND) is True

    tenant.refresh_from_db()
    assert tenant.credentials_status == CredentialsStatus.OK
    # A check proves the secret still works, so it never trusts a cached token.
    assert sum(r.path == "/oauth2/token" for r in wix_sandbox.requests) >= 2


def test_wrong_app_secret_is_recorded_without_the_secret(wix_sandbox, site, caplog):
    tenant = app_tenant(wix_sandbox, site, secret="definitely-not-the-secret")

    with caplog.at_level("DEBUG"):
        assert tenant_verify_credentials(tenant, user=None, via=Via.COMMAND) is False

    tenant.refresh_from_db()
    assert tenant.credentials_status == CredentialsStatus.FAILED
    assert tenant.credentials_error.startswith("Wix 401")
    assert "definitely-not-the-secret" not in tenant.credentials_error
    assert "definitely-not-the-secret" not in caplog.text


def test_site_outside_the_keys_account_is_recorded(wix_sandbox, site):
    stranger = wix_sandbox.add_site(name="Not ours")
    key = wix_sandbox.create_api_key(account_id=site.account_id)
    tenant = TenantFactory(site_id=stranger.id, api_key=key)

    assert tenant_verify_credentials(tenant, user=None, via=Via.COMMAND) is False

    tenant.refresh_from_db()
    assert tenant.credentials_status == CredentialsStatus.FAILED
    assert tenant.credentials_error.startswith("Wix 403")


def test_unreachable_wix_is_recorded(site, wix_sandbox, settings):
    tenant = key_tenant(wix_sandbox, site)
    settings.WIX_API_BASE_URL = "http://127.0.0.1:9"

    assert tenant_verify_credentials(tenant, user=None, via=Via.COMMAND) is False

    tenant.refresh_from_db()
    assert tenant.credentials_status == CredentialsStatus.FAILED
    assert "Could not reach Wix" in tenant.credentials_error
