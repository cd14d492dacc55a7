"""Secrets are decrypted where they are used, and a bad one harms only its own tenant.

Two faults of the hostile test: a key dropped from PORTAL_ENCRYPTION_KEYS (or an old backup)
made the tenant pages and the whole fleet refresh fail; a pasted key with a typographic
quote, an emoji or a line break was accepted, then leaked into logs and task results.
"""

from __future__ import annotations

import io
import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django_celery_results.models import TaskResult

from connections import tasks
from connections.models import Connection, RefreshRun
from connections.services.refresh import tenant_refresh
from connections.tests.builders import add_site, refreshed_tenant
from tenants.models import CREDENTIALS_UNREADABLE, AuditEvent, Tenant
from tenants.tests.builders import api_client_for, messages_of

pytestmark = pytest.mark.django_db

NOT_ASCII = (
    "Use only printable ASCII characters, without spaces or line breaks "
    "(a pasted key sometimes carries typographic quotes or an invisible character)."
)


class Keys:
    """Tenant `lost` was encrypted with a key no longer configured; `kept` with the current."""


@pytest.fixture
def keys(settings, wix_sandbox) -> Keys:
    k = Keys()
    dropped, current = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PORTAL_ENCRYPTION_KEYS = [dropped]
    k.lost = refreshed_tenant(wix_sandbox, add_site(wix_sandbox, "Lost key"))
    settings.PORTAL_ENCRYPTION_KEYS = [current]
    k.kept = refreshed_tenant(wix_sandbox, add_site(wix_sandbox, "Kept key"))
    return k


# --- An undecryptable secret ----------------------------------------------------------------


def test_tenant_pages_load_and_say_the_credentials_are_unreadable(keys, admin_client):
    listing = admin_client.get(reverse("admin:tenants_tenant_changelist"))
    page = admin_client.get(reverse("admin:tenants_tenant_change", args=[keys.lost.pk]))

    assert listing.status_code == 200
    assert CREDENTIALS_UNREADABLE in listing.content.decode()
    assert page.status_code == 200
    assert "Currently unreadable: enter it again." in page.content.decode()


def test_the_api_lists_the_tenant_as_unreadable(keys, admin_user):
    response = api_client_for(admin_user).get("/api/v1/tenants/")

    assert response.status_code == 200
    readable = {t["name"]: t["credentials_readable"] for t in response.json()["results"]}
    assert readable == {"Lost key": False, "Kept key": True}


def test_the_fleet_refresh_records_the_reason_and_refreshes_everyone_else(keys):
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("refresh_connections", "--all", "--workers", "1", stdout=out)

    assert str(failed.value) == "1 of 2 tenants failed to refresh."

    lost = RefreshRun.objects.filter(tenant=keys.lost).latest("started_at")
    kept = RefreshRun.objects.filter(tenant=keys.kept).latest("started_at")
    assert (lost.outcome, lost.error_code) == ("failed", "CREDENTIALS_UNREADABLE")
    assert lost.error_message.startswith(CREDENTIALS_UNREADABLE)
    assert "tenants.Tenant.api_key" in lost.error_message
    assert kept.outcome == "ok"


def test_an_action_says_so_and_is_audited_as_failed(keys, admin_user):
    connection = Connection.objects.get(tenant=keys.lost)

    response = api_client_for(admin_user).post(f"/api/v1/connections/{connection.pk}/disconnect/")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == CREDENTIALS_UNREADABLE
    event = AuditEvent.objects.get(action="disconnect")
    assert (event.outcome, event.message, event.tenant) == (
        "failed",
        CREDENTIALS_UNREADABLE,
        keys.lost,
    )
    assert Connection.objects.get(pk=connection.pk).status == connection.status


def test_an_admin_action_says_so(keys, admin_client):
    connection = Connection.objects.get(tenant=keys.lost)

    response = admin_client.post(
        reverse("admin:connections_connection_changelist"),
        {"action": "refresh", "_selected_action": [connection.pk]},
    )

    assert response.status_code == 302
    assert any(CREDENTIALS_UNREADABLE in m for m in messages_of(response))


def test_entering_the_key_again_makes_the_tenant_work(keys, admin_client, wix_sandbox):
    site = wix_sandbox.site(keys.lost.site_id)
    form = {
        "name": keys.lost.name,
        "site_id": keys.lost.site_id,
        "is_active": "on",
        "notes": "",
        "wix_app": "",
        "instance_id": "",
        "api_key": wix_sandbox.create_api_key(site.account_id),
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }

    response = admin_client.post(reverse("admin:tenants_tenant_change", args=[keys.lost.pk]), form)

    assert response.status_code == 302
    assert tenant_refresh(Tenant.objects.get(pk=keys.lost.pk)).outcome == "ok"


# --- A key that is not printable ASCII -----------------------------------------------------

PASTED = "IST.\u201cpasted-key\u201d-\U0001f600"


def test_the_api_refuses_it_with_a_field_error(admin_user, wix_sandbox):
    site = wix_sandbox.add_site()

    response = api_client_for(admin_user).post(
        "/api/v1/tenants/",
        {"name": "Pasted", "site_id": site.id, "api_key": PASTED},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"api_key": [NOT_ASCII]}
    assert PASTED not in response.content.decode()


def test_the_admin_refuses_it(admin_client, wix_sandbox):
    site = wix_sandbox.add_site()
    form = {
        "name": "Pasted",
        "site_id": site.id,
        "is_active": "on",
        "notes": "",
        "wix_app": "",
        "instance_id": "",
        "api_key": "IST.line\r\nbreak",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }

    response = admin_client.post(reverse("admin:tenants_tenant_add"), form)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"api_key": [NOT_ASCII]}
    assert not Tenant.objects.exists()


def test_the_command_refuses_it_in_one_line(wix_sandbox, monkeypatch):
    site = wix_sandbox.add_site()
    monkeypatch.setenv("PASTED_KEY", PASTED)

    with pytest.raises(CommandError) as refused:
        call_command(
            "add_tenant", "--name", "Pasted", "--site-id", site.id, "--api-key-env", "PASTED_KEY"
        )

    assert NOT_ASCII in str(refused.value)
    assert "\n" not in str(refused.value)
    assert PASTED not in str(refused.value)


def test_a_stored_one_never_reaches_a_log_or_a_task_result(wix_sandbox, caplog):
    tenant = refreshed_tenant(wix_sandbox, add_site(wix_sandbox, "Old row"))
    # A row from before validation, written behind the model's back.
    Tenant.objects.filter(pk=tenant.pk).update(api_key="IST.\u2019quote\r\nX-Evil: 1")

    with caplog.at_level(logging.DEBUG):
        tasks.refresh_tenant.delay(tenant.pk, trigger="manual")

    run = RefreshRun.objects.filter(tenant=tenant).latest("started_at")
    assert (run.outcome, run.error_code) == ("failed", "MALFORMED_CREDENTIALS")
    stored = " ".join(
        f"{r.result} {r.traceback} {r.task_args} {r.task_kwargs}" for r in TaskResult.objects.all()
    )
    seen = caplog.text + stored + run.error_message
    for fragment in ("quote", "X-Evil", "\u2019"):
        assert fragment not in seen
