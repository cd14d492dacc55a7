import io
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tenants.fields import reveal
from tenants.models import AuthMethod, CredentialsStatus, Tenant
from tenants.tests.factories import TenantFactory, WixAppFactory, random_secret

pytestmark = pytest.mark.django_db

SITE_ID = "0b0c0d0e-1a2b-4c3d-8e9f-001122334455"


def add_tenant(*args, stdin=""):
    out = io.StringIO()
    call_command("add_tenant", *args, stdin=io.StringIO(stdin), stdout=out)
    return out.getvalue()


def test_api_key_from_stdin():
    secret = random_secret()

    out = add_tenant(
        "--name", "Salon", "--site-id", SITE_ID, "--notes", "VIP", "--api-key-stdin", stdin=secret
    )

    tenant = Tenant.objects.get()
    assert out == f"{tenant.pk}\n"
    assert (tenant.name, tenant.site_id, tenant.notes) == ("Salon", SITE_ID, "VIP")
    assert reveal(tenant.api_key) == secret
    assert tenant.auth_method == AuthMethod.API_KEY


def test_api_key_from_env(monkeypatch):
    secret = random_secret()
    monkeypatch.setenv("TEST_TENANT_API_KEY", secret)

    out = add_tenant(
        "--name", "Salon", "--site-id", SITE_ID, "--api-key-env", "TEST_TENANT_API_KEY"
    )

    tenant = Tenant.objects.get()
    assert out == f"{tenant.pk}\n"
    assert reveal(tenant.api_key) == secret


@pytest.mark.parametrize("reference", ["pk", "app_id", "APP_ID"])
def test_wix_app_by_id_or_app_id(reference):
    wix_app = WixAppFactory()
    instance_id = str(uuid.uuid4())
    value = {"pk": str(wix_app.pk), "app_id": wix_app.app_id, "APP_ID": wix_app.app_id.upper()}

    out = add_tenant(
        "--name",
        "Salon",
        "--site-id",
        SITE_ID,
        "--wix-app",
        value[reference],
        "--instance-id",
        instance_id,
    )

    tenant = Tenant.objects.get()
    assert out == f"{tenant.pk}\n"
    assert (tenant.wix_app, tenant.instance_id, tenant.api_key) == (wix_app, instance_id, "")
    assert tenant.auth_method == AuthMethod.OAUTH_APP


def test_existing_site_id_is_an_error():
    existing = TenantFactory(site_id=SITE_ID, name="Before")

    with pytest.raises(CommandError) as excinfo:
        add_tenant(
            "--name", "After", "--site-id", SITE_ID.upper(), "--api-key-stdin", stdin="k" * 20
        )

    assert str(excinfo.value) == (
        f"A tenant with site ID {SITE_ID} already exists (id {existing.pk}); "
        "pass --update to change it."
    )
    existing.refresh_from_db()
    assert existing.name == "Before"


def test_update_replaces_the_way_in_and_resets_the_check():
    existing = TenantFactory(
        site_id=SITE_ID,
        notes="kept",
        credentials_status=CredentialsStatus.OK,
    )
    wix_app = WixAppFactory()
    instance_id = str(uuid.uuid4())

    out = add_tenant(
        "--name",
        "Renamed",
        "--site-id",
        SITE_ID,
        "--wix-app",
        str(wix_app.pk),
        "--instance-id",
        instance_id,
        "--update",
    )

    assert out == f"{existing.pk}\n"
    tenant = Tenant.objects.get()
    assert (tenant.name, tenant.notes) == ("Renamed", "kept")
    assert (tenant.wix_app, tenant.instance_id, tenant.api_key) == (wix_app, instance_id, "")
    assert tenant.credentials_status == CredentialsStatus.UNVERIFIED


def test_update_creates_when_missing():
    out = add_tenant(
        "--name", "New", "--site-id", SITE_ID, "--api-key-stdin", "--update", stdin=random_secret()
    )

    assert out == f"{Tenant.objects.get().pk}\n"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ["--site-id", "nope", "--api-key-stdin"],
            "s3cret-value",
            "site_id: Enter a GUID such as 0b0c0d0e-1a2b-4c3d-8e9f-001122334455.",
        ),
        (
            ["--wix-app", "999999", "--instance-id", SITE_ID],
            "",
            "No Wix app 999999.",
        ),
        (
            ["--wix-app", "1f0e0d0c-1a2b-4c3d-8e9f-001122334455", "--instance-id", SITE_ID],
            "",
            "No Wix app 1f0e0d0c-1a2b-4c3d-8e9f-001122334455.",
        ),
        (
            ["--wix-app", "my app", "--instance-id", SITE_ID],
            "",
            "--wix-app 'my app' is neither a Wix app id nor an app ID (GUID).",
        ),
        (["--wix-app", "1"], "", "--wix-app needs --instance-id."),
        (["--instance-id", SITE_ID], "", "--instance-id needs --wix-app."),
        (["--api-key-stdin"], "", "No API key on stdin."),
        (
            ["--api-key-env", "TEST_NO_SUCH_VARIABLE"],
            "",
            "Environment variable TEST_NO_SUCH_VARIABLE is not set.",
        ),
        (
            ["--api-key-env", "TEST_EMPTY_API_KEY"],
            "",
            "Environment variable TEST_EMPTY_API_KEY is empty.",
        ),
        (
            ["--api-key-stdin", "--api-key-env", "TEST_TENANT_API_KEY"],
            "s3cret-value",
            "Give the API key with --api-key-stdin or --api-key-env VAR, not both.",
        ),
        (
            [],
            "",
            "Give exactly one way in: --wix-app with --instance-id, --api-key-stdin, "
            "or --api-key-env VAR.",
        ),
        (
            ["--wix-app", "1", "--instance-id", SITE_ID, "--api-key-stdin"],
            "s3cret-value",
            "Give exactly one way in: --wix-app with --instance-id, --api-key-stdin, "
            "or --api-key-env VAR.",
        ),
    ],
    ids=[
        "bad-site-guid",
        "unknown-app-pk",
        "unknown-app-id",
        "bad-app-reference",
        "app-without-instance",
        "instance-without-app",
        "empty-stdin",
        "missing-env",
        "empty-env",
        "both-key-sources",
        "neither",
        "both-ways-in",
    ],
)
def test_bad_input(monkeypatch, args, stdin, message):
    monkeypatch.delenv("TEST_NO_SUCH_VARIABLE", raising=False)
    monkeypatch.setenv("TEST_EMPTY_API_KEY", "")
    monkeypatch.setenv("TEST_TENANT_API_KEY", "s3cret-value")
    if "--site-id" not in args:
        args = ["--site-id", str(uuid.uuid4()), *args]

    with pytest.raises(CommandError) as excinfo:
        add_tenant("--name", "Salon", *args, stdin=stdin)

    assert str(excinfo.value) == message
    assert "s3cret-value" not in str(excinfo.value)
    assert Tenant.objects.count() == 0


def test_bad_instance_id():
    wix_app = WixAppFactory()

    with pytest.raises(CommandError) as excinfo:
        add_tenant(
            "--name",
            "Salon",
            "--site-id",
            SITE_ID,
            "--wix-app",
            str(wix_app.pk),
            "--instance-id",
            "x",
        )

    assert str(excinfo.value) == (
        "instance_id: Enter a GUID such as 0b0c0d0e-1a2b-4c3d-8e9f-001122334455."
    )
