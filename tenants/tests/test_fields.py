import io

import pytest
from cryptography.fernet import Fernet
from django import forms
from django.core.exceptions import FieldError, ValidationError
from django.core.management import call_command
from django.core.serializers.base import DeserializationError
from django.db.models import F
from django.forms import modelform_factory

from tenants import crypto
from tenants.fields import reveal
from tenants.models import Tenant, WixApp
from tenants.tests.factories import TenantFactory, WixAppFactory, random_secret

pytestmark = pytest.mark.django_db


def test_value_is_stored_encrypted_and_read_back(encryption_key, read_raw):
    secret = random_secret()
    tenant = TenantFactory(api_key=secret)

    raw = read_raw(Tenant, "api_key", tenant.pk)

    assert secret not in raw
    assert Fernet(encryption_key).decrypt(raw.encode()).decode() == secret
    assert reveal(Tenant.objects.get(pk=tenant.pk).api_key) == secret
    assert reveal(Tenant.objects.values_list("api_key", flat=True).get(pk=tenant.pk)) == secret


def test_instance_keeps_plaintext_after_save(encryption_key):
    secret = random_secret()
    wix_app = WixAppFactory(app_secret=secret)

    assert reveal(wix_app.app_secret) == secret


def test_empty_value_is_stored_as_empty_string(encryption_key, read_raw):
    tenant = TenantFactory(oauth=True)

    assert read_raw(Tenant, "api_key", tenant.pk) == ""
    assert Tenant.objects.get(pk=tenant.pk).api_key == ""


def test_update_encrypts(encryption_key, read_raw):
    tenant = TenantFactory()
    secret = random_secret()

    Tenant.objects.filter(pk=tenant.pk).update(api_key=secret)

    raw = read_raw(Tenant, "api_key", tenant.pk)
    assert Fernet(encryption_key).decrypt(raw.encode()).decode() == secret


def test_old_key_second_in_the_list_still_decrypts(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PORTAL_ENCRYPTION_KEYS = [old]
    secret = random_secret()
    tenant = TenantFactory(api_key=secret)

    settings.PORTAL_ENCRYPTION_KEYS = [new, old]

    assert reveal(Tenant.objects.get(pk=tenant.pk).api_key) == secret


def test_wrong_key_loads_the_row_and_raises_naming_the_field_when_used(settings, read_raw):
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    secret = random_secret()
    wix_app = WixAppFactory(app_secret=secret)
    raw = read_raw(WixApp, "app_secret", wix_app.pk)
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    loaded = WixApp.objects.get(pk=wix_app.pk)
    assert loaded.name == wix_app.name
    assert bool(loaded.app_secret)
    assert secret not in repr(loaded.app_secret) and raw not in str(loaded.app_secret)
    with pytest.raises(crypto.DecryptionError) as excinfo:
        reveal(loaded.app_secret)

    message = str(excinfo.value)
    assert message == (
        "Cannot decrypt tenants.WixApp.app_secret: no key in PORTAL_ENCRYPTION_KEYS fits "
        "(the key that encrypted it may be missing from PORTAL_ENCRYPTION_KEYS)."
    )
    assert raw not in message
    assert secret not in message


def test_set_and_not_set_lookups(encryption_key):
    with_key = TenantFactory()
    with_app = TenantFactory(oauth=True)

    assert list(Tenant.objects.filter(api_key="")) == [with_app]
    assert list(Tenant.objects.exclude(api_key="")) == [with_key]
    assert Tenant.objects.filter(api_key__isnull=False).count() == 2
    assert Tenant.objects.filter(api_key=None).count() == 0


def test_exact_lookup_on_a_value_is_refused(encryption_key):
    with pytest.raises(FieldError) as excinfo:
        Tenant.objects.filter(api_key="some-key")

    assert str(excinfo.value) == (
        'tenants.Tenant.api_key is encrypted: exact lookups only accept "" (not set).'
    )


def test_exact_lookup_on_an_expression_is_refused(encryption_key):
    with pytest.raises(FieldError):
        Tenant.objects.filter(api_key=F("name"))


@pytest.mark.parametrize("lookup", ["icontains", "startswith", "in", "gt"])
def test_other_lookups_are_refused(encryption_key, lookup):
    with pytest.raises(FieldError) as excinfo:
        Tenant.objects.filter(**{f"api_key__{lookup}": "x"})

    assert str(excinfo.value) == (
        "tenants.Tenant.api_key is encrypted: only the isnull lookup and exact against "
        f'"" (not set) are supported, not {lookup!r}.'
    )


def test_transforms_are_refused(encryption_key):
    with pytest.raises(FieldError) as excinfo:
        Tenant.objects.filter(api_key__lower="x")

    assert str(excinfo.value) == (
        "tenants.Tenant.api_key is encrypted: only the isnull lookup and exact against "
        "\"\" (not set) are supported, not 'lower'."
    )


def test_default_form_never_renders_the_secret():
    secret = random_secret()
    tenant = TenantFactory(api_key=secret)
    form_class = modelform_factory(Tenant, fields=["api_key"])
    field = Tenant._meta.get_field("api_key")

    html = str(form_class(instance=tenant))

    assert 'type="password"' in html
    assert secret not in html
    assert isinstance(field.formfield(widget=forms.Textarea).widget, forms.PasswordInput)


def _dump(*labels: str) -> str:
    out = io.StringIO()
    call_command("dumpdata", *labels, format="json", stdout=out)
    return out.getvalue()


def test_dumpdata_writes_no_secret_in_clear_and_loaddata_restores_it(encryption_key, tmp_path):
    api_key, app_secret = random_secret(), random_secret()
    tenant = TenantFactory(api_key=api_key)
    wix_app = WixAppFactory(app_secret=app_secret)

    fixture = _dump("tenants.Tenant", "tenants.WixApp")

    assert api_key not in fixture
    assert app_secret not in fixture
    path = tmp_path / "tenants.json"
    path.write_text(fixture)
    Tenant.objects.filter(pk=tenant.pk).delete()
    WixApp.objects.filter(pk=wix_app.pk).delete()

    call_command("loaddata", str(path), verbosity=0)

    assert reveal(Tenant.objects.get(pk=tenant.pk).api_key) == api_key
    assert reveal(WixApp.objects.get(pk=wix_app.pk).app_secret) == app_secret


def test_loaddata_without_the_key_fails_naming_the_field_not_the_value(settings, tmp_path):
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    secret = random_secret()
    tenant = TenantFactory(api_key=secret)
    fixture = _dump("tenants.Tenant")
    Tenant.objects.filter(pk=tenant.pk).delete()
    path = tmp_path / "tenants.json"
    path.write_text(fixture)
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(DeserializationError) as failure:
        call_command("loaddata", str(path), verbosity=0)

    assert "Cannot decrypt tenants.Tenant.api_key" in str(failure.value)
    assert secret not in str(failure.value)
    assert not Tenant.objects.filter(pk=tenant.pk).exists()


def test_a_loaded_secret_saved_again_keeps_its_token(encryption_key, read_raw):
    secret = random_secret()
    tenant = TenantFactory(api_key=secret)
    token = read_raw(Tenant, "api_key", tenant.pk)

    loaded = Tenant.objects.get(pk=tenant.pk)
    loaded.name = "Renamed"
    loaded.full_clean()
    loaded.save()

    assert read_raw(Tenant, "api_key", tenant.pk) == token
    assert reveal(Tenant.objects.get(pk=tenant.pk).api_key) == secret


@pytest.mark.parametrize(
    "pasted",
    ["key\u2019with-a-quote", "key-with-emoji-\U0001f600", "key\r\nX-Injected: 1", "two words"],
)
def test_a_secret_that_is_not_printable_ascii_is_refused(encryption_key, pasted):
    tenant = TenantFactory.build(api_key=pasted)

    with pytest.raises(ValidationError) as excinfo:
        tenant.full_clean()

    assert excinfo.value.message_dict["api_key"] == [
        "Use only printable ASCII characters, without spaces or line breaks "
        "(a pasted key sometimes carries typographic quotes or an invisible character)."
    ]
    assert pasted not in str(excinfo.value)
