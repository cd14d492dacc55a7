import logging
import uuid

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.urls import reverse
from django.views.debug import SafeExceptionReporterFilter

from tenants.fields import reveal
from tenants.models import CredentialsStatus, Tenant, WixApp, secret_hint
from tenants.tests.factories import TenantFactory, WixAppFactory, random_secret

pytestmark = pytest.mark.django_db

KEEP = "Leave blank to keep the current secret."


def tenant_form(**overrides):
    data = {
        "name": "Salon Aurora",
        "site_id": str(uuid.uuid4()),
        "is_active": "on",
        "notes": "",
        "wix_app": "",
        "instance_id": "",
        "api_key": "",
        # The (empty) members inline that superusers get on the tenant page.
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    return {**data, **overrides}


def url(name, *args):
    return reverse(f"admin:tenants_{name}", args=args)


@pytest.fixture
def log_sql():
    """Log every SQL statement with its parameters (at DEBUG), as DEBUG=True would."""
    connection.force_debug_cursor = True
    yield
    connection.force_debug_cursor = False


def test_no_secret_anywhere(admin_client, caplog, encryption_key, read_raw, log_sql):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")
    app_secret, api_key = random_secret(), random_secret()

    response = admin_client.post(
        url("wixapp_add"),
        {"name": "Agency app", "app_id": str(uuid.uuid4()), "app_secret": app_secret},
    )
    assert response.status_code == 302
    wix_app = WixApp.objects.get()
    response = admin_client.post(url("tenant_add"), tenant_form(api_key=api_key))
    assert response.status_code == 302
    assert response["Location"] == url("tenant_changelist")
    tenant = Tenant.objects.get()

    pages = {
        "tenant change": admin_client.get(url("tenant_change", tenant.pk)),
        "tenant list": admin_client.get(url("tenant_changelist")),
        "tenant history": admin_client.get(url("tenant_history", tenant.pk)),
        "app change": admin_client.get(url("wixapp_change", wix_app.pk)),
        "app list": admin_client.get(url("wixapp_changelist")),
        "app history": admin_client.get(url("wixapp_history", wix_app.pk)),
        "tenant past version": admin_client.get(
            url("tenant_simple_history", tenant.pk, tenant.history.get().history_id)
        ),
    }
    for name, page in pages.items():
        assert page.status_code == 200, name
        html = page.content.decode()
        assert api_key not in html, name
        assert app_secret not in html, name
    assert f"Currently {secret_hint(api_key)}. {KEEP}" in pages["tenant change"].content.decode()
    assert "Salon Aurora" in pages["tenant history"].content.decode()

    for obj in (tenant, wix_app, Tenant.objects.get(), WixApp.objects.get()):
        assert api_key not in f"{obj} {obj!r}"
        assert app_secret not in f"{obj} {obj!r}"
    for record in [*tenant.history.all(), *wix_app.history.all()]:
        assert api_key not in f"{record} {record!r} {vars(record)}"
        assert app_secret not in f"{record} {record!r} {vars(record)}"

    key = Fernet(encryption_key)
    raw_key = read_raw(Tenant, "api_key", tenant.pk)
    raw_secret = read_raw(WixApp, "app_secret", wix_app.pk)

    assert raw_key in caplog.text  # SQL and its parameters really were logged
    assert api_key not in caplog.text
    assert app_secret not in caplog.text

    assert api_key not in raw_key
    assert app_secret not in raw_secret
    assert key.decrypt(raw_key.encode()).decode() == api_key
    assert key.decrypt(raw_secret.encode()).decode() == app_secret


def test_add_page_says_the_secret_is_write_only(admin_client):
    html = admin_client.get(url("wixapp_add")).content.decode()

    assert "Currently not set. Stored encrypted; it is never shown again." in html
    assert 'type="password" name="app_secret"' in html


def test_secret_is_required_when_adding_a_wix_app(admin_client):
    response = admin_client.post(
        url("wixapp_add"), {"name": "Agency app", "app_id": str(uuid.uuid4()), "app_secret": ""}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"app_secret": ["This field is required."]}
    assert WixApp.objects.count() == 0


def test_blank_secret_on_change_keeps_the_current_one(admin_client):
    secret = random_secret()
    wix_app = WixAppFactory(app_secret=secret)

    page = admin_client.get(url("wixapp_change", wix_app.pk)).content.decode()
    response = admin_client.post(
        url("wixapp_change", wix_app.pk),
        {"name": "Renamed", "app_id": wix_app.app_id, "app_secret": ""},
    )

    assert f"Currently {secret_hint(secret)}. {KEEP}" in page
    assert response.status_code == 302
    wix_app.refresh_from_db()
    assert (wix_app.name, reveal(wix_app.app_secret)) == ("Renamed", secret)


def test_new_secret_on_change_replaces_it(admin_client):
    tenant = TenantFactory(credentials_status=CredentialsStatus.OK)
    new_key = random_secret()

    response = admin_client.post(
        url("tenant_change", tenant.pk),
        tenant_form(name=tenant.name, site_id=tenant.site_id, api_key=new_key),
    )

    assert response.status_code == 302
    tenant.refresh_from_db()
    assert reveal(tenant.api_key) == new_key
    assert tenant.credentials_status == CredentialsStatus.UNVERIFIED


def test_unchanged_credentials_keep_the_check(admin_client):
    tenant = TenantFactory(credentials_status=CredentialsStatus.OK)

    response = admin_client.post(
        url("tenant_change", tenant.pk),
        tenant_form(name="Renamed", site_id=tenant.site_id),
    )

    assert response.status_code == 302
    tenant.refresh_from_db()
    assert (tenant.name, tenant.credentials_status) == ("Renamed", CredentialsStatus.OK)


def test_switching_from_api_key_to_wix_app(admin_client, wix_sandbox):
    site = wix_sandbox.add_site()
    app_id, app_secret = wix_sandbox.create_app()
    instance_id = wix_sandbox.install_app(app_id, site.id)
    tenant = TenantFactory(site_id=site.id)
    wix_app = WixAppFactory(app_id=app_id, app_secret=app_secret)
    form = tenant_form(
        name=tenant.name, site_id=tenant.site_id, wix_app=wix_app.pk, instance_id=instance_id
    )

    refused = admin_client.post(url("tenant_change", tenant.pk), form)
    accepted = admin_client.post(url("tenant_change", tenant.pk), {**form, "clear_api_key": "on"})

    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors == {
        "api_key": ["Use either a Wix app with an app instance ID, or an API key, not both."]
    }
    assert accepted.status_code == 302
    tenant.refresh_from_db()
    assert (tenant.wix_app, tenant.instance_id, tenant.api_key) == (wix_app, instance_id, "")


def test_tenant_without_a_way_in_is_refused(admin_client):
    response = admin_client.post(url("tenant_add"), tenant_form())

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "api_key": ["Enter an API key, or choose a Wix app and an app instance ID."]
    }


def test_rejected_form_does_not_echo_the_secret(admin_client):
    secret = random_secret()

    response = admin_client.post(url("tenant_add"), tenant_form(site_id="bad", api_key=secret))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "site_id": ["Enter a GUID such as 0b0c0d0e-1a2b-4c3d-8e9f-001122334455."]
    }
    assert secret not in response.content.decode()


def test_changelist_columns_search_and_filters(admin_client):
    TenantFactory(name="Salon Aurora")
    TenantFactory(name="Dental Care", oauth=True, is_active=False)

    everything = admin_client.get(url("tenant_changelist")).content.decode()
    searched = admin_client.get(url("tenant_changelist"), {"q": "aurora"})
    inactive = admin_client.get(url("tenant_changelist"), {"is_active__exact": "0"})

    assert "API key" in everything
    assert "Wix app (OAuth)" in everything
    assert [t.name for t in searched.context["cl"].result_list] == ["Salon Aurora"]
    assert [t.name for t in inactive.context["cl"].result_list] == ["Dental Care"]


def test_error_reports_never_show_the_posted_secrets(admin_client):
    response = admin_client.post(url("tenant_add"), tenant_form(api_key="IST.the-posted-key"))

    posted = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert posted["api_key"] == SafeExceptionReporterFilter.cleansed_substitute
