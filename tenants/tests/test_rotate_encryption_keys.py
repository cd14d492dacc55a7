import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError

from tenants import crypto
from tenants.fields import reveal
from tenants.models import AuditEvent, Tenant, WixApp
from tenants.tests.builders import superuser
from tenants.tests.factories import TenantFactory, WixAppFactory, random_secret

pytestmark = pytest.mark.django_db


def rotate(*args):
    out = io.StringIO()
    call_command("rotate_encryption_keys", *args, stdout=out)
    return out.getvalue()


def test_rotation_moves_every_value_to_the_first_key(settings, read_raw):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PORTAL_ENCRYPTION_KEYS = [old]
    tenants = {TenantFactory().pk: None for _ in range(5)}
    tenants = {pk: reveal(Tenant.objects.get(pk=pk).api_key) for pk in tenants}
    oauth_tenant = TenantFactory(oauth=True)
    apps = {WixApp.objects.get().pk: reveal(WixApp.objects.get().app_secret)}
    settings.PORTAL_ENCRYPTION_KEYS = [new, old]

    out = rotate("--batch-size", "2")

    assert out == (
        "tenants.WixApp: 1 value(s) re-encrypted\n"
        "tenants.Tenant: 5 value(s) re-encrypted\n"
        "alerts.WebhookSecret: 0 value(s) re-encrypted\n"
        "Done: 6 value(s) re-encrypted with the first key.\n"
    )
    new_only = Fernet(new)
    for pk, secret in tenants.items():
        assert new_only.decrypt(read_raw(Tenant, "api_key", pk).encode()).decode() == secret
    for pk, secret in apps.items():
        assert new_only.decrypt(read_raw(WixApp, "app_secret", pk).encode()).decode() == secret
    assert read_raw(Tenant, "api_key", oauth_tenant.pk) == ""

    settings.PORTAL_ENCRYPTION_KEYS = [new]
    assert {t.pk: reveal(t.api_key) for t in Tenant.objects.exclude(api_key="")} == tenants


def test_rotation_moves_values_from_the_derived_key(settings, read_raw):
    settings.PORTAL_ENCRYPTION_KEYS = []
    secret = random_secret()
    tenant = TenantFactory(api_key=secret)
    new = Fernet.generate_key().decode()
    settings.PORTAL_ENCRYPTION_KEYS = [new]

    rotate()

    assert Fernet(new).decrypt(read_raw(Tenant, "api_key", tenant.pk).encode()).decode() == secret


def test_undecryptable_value_fails_naming_model_and_pk_only(settings, read_raw):
    current, lost = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PORTAL_ENCRYPTION_KEYS = [current]
    WixAppFactory()
    settings.PORTAL_ENCRYPTION_KEYS = [lost]
    secret = random_secret()
    tenant = TenantFactory(api_key=secret)
    raw_before = read_raw(Tenant, "api_key", tenant.pk)
    settings.PORTAL_ENCRYPTION_KEYS = [current]

    with pytest.raises(CommandError) as excinfo:
        rotate()

    message = str(excinfo.value)
    assert message == (
        f"Cannot decrypt tenants.Tenant.api_key (pk={tenant.pk}): no key in "
        "PORTAL_ENCRYPTION_KEYS fits (the key that encrypted it may be missing from "
        "PORTAL_ENCRYPTION_KEYS). Nothing was changed for tenants.Tenant; models listed "
        "above were already re-encrypted."
    )
    assert "\n" not in message
    assert secret not in message
    assert raw_before not in message
    assert read_raw(Tenant, "api_key", tenant.pk) == raw_before


def test_tenant_rows_roll_back_together(settings, read_raw):
    old = Fernet.generate_key().decode()
    settings.PORTAL_ENCRYPTION_KEYS = [old]
    first = TenantFactory()
    first_raw = read_raw(Tenant, "api_key", first.pk)
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    unreadable = TenantFactory()  # comes after `first` in pk order
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old]

    with pytest.raises(CommandError) as excinfo:
        rotate("--batch-size", "1")

    assert f"(pk={unreadable.pk})" in str(excinfo.value)
    assert read_raw(Tenant, "api_key", first.pk) == first_raw


def test_invalid_key_fails_with_one_line(settings):
    settings.PORTAL_ENCRYPTION_KEYS = ["not-a-key"]

    with pytest.raises(CommandError) as excinfo:
        rotate()

    assert str(excinfo.value) == (
        "PORTAL_ENCRYPTION_KEYS[0] is not a valid Fernet key (32 url-safe base64-encoded bytes)."
    )


def test_nothing_to_rotate(encryption_key):
    assert rotate() == (
        "tenants.WixApp: 0 value(s) re-encrypted\n"
        "tenants.Tenant: 0 value(s) re-encrypted\n"
        "alerts.WebhookSecret: 0 value(s) re-encrypted\n"
        "Done: 0 value(s) re-encrypted with the first key.\n"
    )


def test_rotation_twice_keeps_the_value(encryption_key, read_raw):
    secret = random_secret()
    tenant = TenantFactory(api_key=secret)

    rotate()
    rotate()

    assert reveal(Tenant.objects.get(pk=tenant.pk).api_key) == secret
    assert crypto.decrypt(read_raw(Tenant, "api_key", tenant.pk)) == secret


def test_command_line_failure_exits_1_with_one_line(settings, capsys):
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    tenant = TenantFactory()
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(SystemExit) as excinfo:
        execute_from_command_line(["manage.py", "rotate_encryption_keys", "--skip-checks"])

    assert excinfo.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"CommandError: Cannot decrypt tenants.Tenant.api_key (pk={tenant.pk}):")
    assert err.count("\n") == 1


def test_rotation_is_audited_per_model_with_who_ran_it(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PORTAL_ENCRYPTION_KEYS = [old]
    TenantFactory(oauth=True)
    TenantFactory()
    superuser()
    settings.PORTAL_ENCRYPTION_KEYS = [new, old]

    rotate("--user", "root")

    events = AuditEvent.objects.filter(action="rotate_encryption_keys").order_by("id")
    assert [(e.via, e.username, e.parameters) for e in events] == [
        ("command", "root", {"model": "tenants.WixApp", "values": 1}),
        ("command", "root", {"model": "tenants.Tenant", "values": 1}),
        ("command", "root", {"model": "alerts.WebhookSecret", "values": 0}),
    ]
    assert old not in str([e.parameters for e in events]) and new not in str(events)
