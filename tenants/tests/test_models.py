import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from tenants.models import AuthMethod, CredentialsStatus, Tenant, WixApp, secret_hint
from tenants.tests.factories import TenantFactory, WixAppFactory, random_secret

pytestmark = pytest.mark.django_db

ONE_WAY_IN = "A tenant needs exactly one way in: a Wix app with an app instance ID, or an API key."


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("", "not set"),
        ("a", "set"),
        ("elevenchars", "set"),
        ("twelve-chars", "set, ends in …hars"),
        ("x" * 40 + "abcd", "set, ends in …abcd"),
    ],
)
def test_secret_hint(value, hint):
    assert secret_hint(value) == hint


def test_str_and_repr_show_the_name_only():
    secret = random_secret()
    wix_app = WixAppFactory.build(name="Agency", app_secret=secret)
    tenant = TenantFactory.build(name="Client", api_key=secret)

    assert str(wix_app) == "Agency"
    assert repr(wix_app) == "<WixApp: Agency>"
    assert str(tenant) == "Client"
    assert repr(tenant) == "<Tenant: Client>"


def test_auth_method():
    assert TenantFactory.build().auth_method == "api_key"
    assert TenantFactory.build(oauth=True, wix_app=WixAppFactory()).auth_method == "oauth_app"
    assert TenantFactory.build().auth_method == AuthMethod.API_KEY
    assert TenantFactory.build(api_key="").auth_method is None
    assert TenantFactory.build(api_key="", instance_id=str(uuid.uuid4())).auth_method is None


def test_active_queryset():
    active = TenantFactory()
    TenantFactory(is_active=False)

    assert list(Tenant.objects.active()) == [active]


def test_new_tenant_is_unverified():
    assert TenantFactory().credentials_status == CredentialsStatus.UNVERIFIED


def test_clean_accepts_each_way_in():
    TenantFactory.build().full_clean()
    TenantFactory.build(oauth=True, wix_app=WixAppFactory()).full_clean()


def test_clean_rejects_both_ways_in():
    tenant = TenantFactory.build(wix_app=WixAppFactory(), instance_id=str(uuid.uuid4()))

    with pytest.raises(ValidationError) as excinfo:
        tenant.full_clean()

    assert excinfo.value.message_dict == {
        "api_key": ["Use either a Wix app with an app instance ID, or an API key, not both."]
    }


def test_clean_rejects_no_way_in():
    with pytest.raises(ValidationError) as excinfo:
        TenantFactory.build(api_key="").full_clean()

    assert excinfo.value.message_dict == {
        "api_key": ["Enter an API key, or choose a Wix app and an app instance ID."]
    }


def test_clean_rejects_an_app_without_instance():
    with pytest.raises(ValidationError) as excinfo:
        TenantFactory.build(api_key="", wix_app=WixAppFactory()).full_clean()

    assert excinfo.value.message_dict == {
        "instance_id": ["Enter the app instance ID for this Wix app."]
    }


def test_clean_rejects_an_instance_without_app():
    with pytest.raises(ValidationError) as excinfo:
        TenantFactory.build(api_key="", instance_id=str(uuid.uuid4())).full_clean()

    assert excinfo.value.message_dict == {
        "wix_app": ["Choose the Wix app this instance belongs to."]
    }


def test_constraint_is_validated_when_clean_is_bypassed():
    tenant = TenantFactory.build(api_key="")

    with pytest.raises(ValidationError) as excinfo:
        tenant.validate_constraints()

    assert excinfo.value.messages == [ONE_WAY_IN]


@pytest.mark.parametrize(
    "fields",
    [
        {"api_key": ""},
        {"instance_id": "0b0c0d0e-1a2b-4c3d-8e9f-001122334455"},
        {"api_key": "", "instance_id": "0b0c0d0e-1a2b-4c3d-8e9f-001122334455"},
        {"with_app": True},
        {"with_app": True, "api_key": "", "instance_id": ""},
    ],
    ids=["neither", "key-and-instance", "instance-only", "key-and-app", "app-only"],
)
def test_database_refuses_anything_but_one_way_in(fields):
    if fields.pop("with_app", False):
        fields["wix_app"] = WixAppFactory()
    tenant = TenantFactory.build(**fields)

    with pytest.raises(IntegrityError) as excinfo, transaction.atomic():
        tenant.save()

    assert "tenants_tenant_exactly_one_way_in" in str(excinfo.value)


def test_guids_are_validated():
    tenant = TenantFactory.build(site_id="not-a-guid")

    with pytest.raises(ValidationError) as excinfo:
        tenant.full_clean()

    assert excinfo.value.message_dict == {
        "site_id": ["Enter a GUID such as 0b0c0d0e-1a2b-4c3d-8e9f-001122334455."]
    }


def test_app_id_is_validated():
    with pytest.raises(ValidationError) as excinfo:
        WixAppFactory.build(app_id="123").full_clean()

    assert excinfo.value.message_dict == {
        "app_id": ["Enter a GUID such as 0b0c0d0e-1a2b-4c3d-8e9f-001122334455."]
    }


def test_app_secret_is_required():
    with pytest.raises(ValidationError) as excinfo:
        WixAppFactory.build(app_secret="").full_clean()

    assert excinfo.value.message_dict == {"app_secret": ["This field cannot be blank."]}


def test_guids_are_lowercased_by_clean():
    wix_app = WixAppFactory.build(app_id="0B0C0D0E-1A2B-4C3D-8E9F-001122334455")
    wix_app.full_clean()

    assert wix_app.app_id == "0b0c0d0e-1a2b-4c3d-8e9f-001122334455"


def test_site_id_is_unique_whatever_its_case():
    TenantFactory(site_id="0b0c0d0e-1a2b-4c3d-8e9f-001122334455")
    tenant = TenantFactory.build(site_id="0B0C0D0E-1A2B-4C3D-8E9F-001122334455")

    with pytest.raises(ValidationError) as excinfo:
        tenant.full_clean()

    assert excinfo.value.message_dict == {"site_id": ["Tenant with this Site ID already exists."]}


def test_switching_ways_in_resets_the_credentials_check():
    tenant = TenantFactory(credentials_status=CredentialsStatus.FAILED, credentials_error="401")
    wix_app = WixAppFactory()

    tenant.use_wix_app(wix_app, instance_id=str(uuid.uuid4()))
    tenant.full_clean()
    tenant.save()

    assert tenant.api_key == ""
    assert tenant.auth_method == AuthMethod.OAUTH_APP
    assert tenant.credentials_status == CredentialsStatus.UNVERIFIED
    assert tenant.credentials_error == ""

    tenant.use_api_key("a-new-key")
    tenant.full_clean()

    assert (tenant.wix_app, tenant.instance_id) == (None, "")
    assert tenant.auth_method == AuthMethod.API_KEY


def test_history_leaves_secrets_out():
    tenant = TenantFactory()
    wix_app = WixAppFactory()

    historical_tenant_fields = {f.name for f in tenant.history.model._meta.get_fields()}
    historical_app_fields = {f.name for f in wix_app.history.model._meta.get_fields()}

    assert "api_key" not in historical_tenant_fields
    assert "site_id" in historical_tenant_fields
    assert "app_secret" not in historical_app_fields
    assert tenant.history.count() == 1


def test_wix_app_in_use_cannot_be_deleted():
    tenant = TenantFactory(oauth=True)

    with pytest.raises(ProtectedError):
        tenant.wix_app.delete()
    assert WixApp.objects.count() == 1
