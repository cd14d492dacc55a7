"""Each tenant verb, through the admin, the API and a command, leaves the same audit row.

The row names the act, how it came (via), Wix's request id when Wix was asked, and what
changed, old and new; never a secret.
"""

from __future__ import annotations

import io
import uuid

import pytest
from django.contrib.admin import helpers
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.urls import reverse

from tenants import audit
from tenants.models import AuditEvent, Tenant, Via
from tenants.services.tenants import tenant_save, tenant_set_active
from tenants.tests import builders
from tenants.tests.factories import random_secret

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser():
    return builders.superuser()


@pytest.fixture
def site(wix_sandbox):
    return wix_sandbox.add_site(name="Salon Aurora")


@pytest.fixture
def tenant(wix_sandbox, site):
    return builders.sandbox_tenant(wix_sandbox, site)


def last_event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("id")


def change_form(tenant: Tenant, **overrides) -> dict:
    data = {
        "name": tenant.name,
        "site_id": tenant.site_id,
        "notes": tenant.notes,
        "api_key": "",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    if tenant.is_active:
        data["is_active"] = "on"
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# --- Verify credentials: Wix is asked, so the row carries Wix's request id ---------------


def verify_in_admin(tenant, user):
    response = builders.admin_client_for(user).post(
        reverse("admin:tenants_tenant_changelist"),
        {"action": "verify_credentials", helpers.ACTION_CHECKBOX_NAME: [tenant.pk]},
    )
    assert response.status_code == 302


def verify_in_api(tenant, user):
    response = builders.api_client_for(user).post(f"/api/v1/tenants/{tenant.pk}/verify/")
    assert response.status_code == 200, response.content
    assert response.json()["credentials_status"] == "ok"


def verify_in_command(tenant, user):
    out = io.StringIO()
    call_command("tenant", "verify", str(tenant.pk), "--user", user.username, stdout=out)
    assert out.getvalue() == "Salon Aurora: credentials OK.\n"


@pytest.mark.parametrize(
    ("drive", "via"),
    [(verify_in_admin, Via.ADMIN), (verify_in_api, Via.API), (verify_in_command, Via.COMMAND)],
    ids=["admin", "api", "command"],
)
def test_verify_credentials_is_one_act_with_wix_request_id(
    drive, via, tenant, superuser, wix_sandbox
):
    drive(tenant, superuser)

    event = last_event("verify_credentials")
    assert (event.via, event.outcome, event.username) == (via, "ok", "root")
    assert event.tenant == tenant
    assert event.changes == {"credentials_status": ["unverified", "ok"]}
    assert event.wix_request_id == wix_sandbox.requests[-1].request_id != ""


def test_refused_credentials_record_wixs_code_and_request_id(tenant, superuser, wix_sandbox):
    tenant.api_key = random_secret()  # a key Wix never issued
    tenant.save()

    with pytest.raises(CommandError, match=r"^Salon Aurora: credentials refused: "):
        call_command("tenant", "verify", tenant.site_id, stdout=io.StringIO())

    event = last_event("verify_credentials")
    assert (event.via, event.outcome, event.username) == (Via.COMMAND, "failed", "")
    assert (event.error_code, wix_sandbox.requests[-1].status) == ("UNAUTHENTICATED", 401)
    assert event.wix_request_id == wix_sandbox.requests[-1].request_id != ""
    assert event.changes == {"credentials_status": ["unverified", "failed"]}


# --- Deactivate: the admin's "is active" box is the API's deactivate ------------------


def deactivate_in_admin(tenant, user):
    response = builders.admin_client_for(user).post(
        reverse("admin:tenants_tenant_change", args=[tenant.pk]),
        change_form(tenant, is_active=None),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors


def deactivate_in_api(tenant, user):
    response = builders.api_client_for(user).post(f"/api/v1/tenants/{tenant.pk}/deactivate/")
    assert response.status_code == 200
    assert response.json()["is_active"] is False


def deactivate_in_command(tenant, user):
    out = io.StringIO()
    call_command("tenant", "deactivate", str(tenant.pk), "--user", "root", stdout=out)
    assert out.getvalue() == "Salon Aurora: inactive.\n"


@pytest.mark.parametrize(
    ("drive", "via"),
    [
        (deactivate_in_admin, Via.ADMIN),
        (deactivate_in_api, Via.API),
        (deactivate_in_command, Via.COMMAND),
    ],
    ids=["admin", "api", "command"],
)
def test_deactivate_is_one_act_with_old_and_new(drive, via, tenant, superuser):
    drive(tenant, superuser)

    event = last_event("deactivate_tenant")
    assert (event.via, event.outcome, event.username) == (via, "ok", "root")
    assert event.changes == {"is_active": [True, False]}
    assert Tenant.objects.get().is_active is False


# --- Creating and changing a tenant: fields old and new, the key only as a word --------


def test_create_in_each_interface_records_the_fields_and_no_key(
    superuser, wix_sandbox, monkeypatch
):
    site_ids = [wix_sandbox.add_site(name=f"Site {n}").id for n in range(3)]
    keys = [wix_sandbox.create_api_key(wix_sandbox.sites[s].account_id) for s in site_ids]

    response = builders.admin_client_for(superuser).post(
        reverse("admin:tenants_tenant_add"),
        change_form(Tenant(name="By admin", site_id=site_ids[0]), api_key=keys[0]),
    )
    assert response.status_code == 302
    response = builders.api_client_for(superuser).post(
        "/api/v1/tenants/", {"name": "By API", "site_id": site_ids[1], "api_key": keys[1]}
    )
    assert response.status_code == 201, response.content
    monkeypatch.setenv("NEW_KEY", keys[2])
    call_command(
        "add_tenant",
        "--name",
        "By command",
        "--site-id",
        site_ids[2],
        "--api-key-env",
        "NEW_KEY",
        "--user",
        "root",
        stdout=io.StringIO(),
    )

    events = AuditEvent.objects.filter(action="create_tenant").order_by("id")
    assert [(e.via, e.target_repr, e.username) for e in events] == [
        (Via.ADMIN, "By admin", "root"),
        (Via.API, "By API", "root"),
        (Via.COMMAND, "By command", "root"),
    ]
    for event, site_id, key in zip(events, site_ids, keys, strict=True):
        assert event.changes["site_id"] == [None, site_id]
        assert event.changes["api_key"] == [None, "set"]
        assert key not in str(event.changes) + str(event.parameters) + event.message


def test_update_records_old_and_new_and_a_replaced_key_as_a_word(superuser, tenant, wix_sandbox):
    new_key = wix_sandbox.create_api_key(wix_sandbox.sites[tenant.site_id].account_id)

    response = builders.api_client_for(superuser).patch(
        f"/api/v1/tenants/{tenant.pk}/",
        {"name": "Salon Aurora Nord", "api_key": new_key},
        format="json",
    )

    assert response.status_code == 200, response.content
    event = last_event("update_tenant")
    assert event.via == Via.API
    assert event.changes == {
        "name": ["Salon Aurora", "Salon Aurora Nord"],
        "api_key": [None, "replaced"],
    }
    assert new_key not in str(event.changes)


def test_admin_rename_records_old_and_new(superuser, tenant):
    response = builders.admin_client_for(superuser).post(
        reverse("admin:tenants_tenant_change", args=[tenant.pk]),
        change_form(tenant, name="Salon Borealis"),
    )

    assert response.status_code == 302
    event = last_event("update_tenant")
    assert (event.via, event.changes) == (Via.ADMIN, {"name": ["Salon Aurora", "Salon Borealis"]})


# --- The seam: an event is announced once its transaction commits ---------------------


def test_recorded_is_sent_after_commit_and_not_for_a_rolled_back_write(
    tenant, superuser, django_capture_on_commit_callbacks
):
    heard = []

    def hear(sender, event, **kwargs):
        heard.append((event.action, event.changes))

    audit.recorded.connect(hear)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            tenant_set_active(tenant, active=False, user=superuser, via=Via.API)
        assert heard == [("deactivate_tenant", {"is_active": [True, False]})]

        with (
            django_capture_on_commit_callbacks(execute=True) as callbacks,
            pytest.raises(RuntimeError),
            transaction.atomic(),
        ):
            tenant_set_active(tenant, active=True, user=superuser, via=Via.API)
            raise RuntimeError("the caller's transaction fails")
        assert callbacks == []
        assert heard == [("deactivate_tenant", {"is_active": [True, False]})]
        assert not AuditEvent.objects.filter(action="activate_tenant").exists()
        assert Tenant.objects.get().is_active is False
    finally:
        audit.recorded.disconnect(hear)


def test_commands_refuse_an_unknown_user_or_tenant_in_one_line(tenant):
    with pytest.raises(CommandError, match=r"^No active user 'nobody'\.$"):
        call_command("tenant", "verify", str(tenant.pk), "--user", "nobody")
    with pytest.raises(CommandError, match=r"^No tenant 999999\.$"):
        call_command("tenant", "activate", "999999")
    with pytest.raises(CommandError, match=r"^No tenant .*\.$"):
        call_command("tenant", "activate", str(uuid.uuid4()))
    assert not AuditEvent.objects.exists()


def test_admin_and_api_show_the_changes_old_and_new(superuser, tenant):
    tenant.name = "<b>Salon</b> Nord"
    tenant_save(tenant, user=superuser, via=Via.API)
    event = last_event("update_tenant")

    html = (
        builders.admin_client_for(superuser)
        .get(reverse("admin:tenants_auditevent_change", args=[event.pk]))
        .content.decode()
    )
    listed = builders.api_client_for(superuser).get(f"/api/v1/audit-events/{event.pk}/").json()

    assert (
        "<tr><th>name</th><td>&quot;Salon Aurora&quot;</td><td>→</td>"
        "<td>&quot;&lt;b&gt;Salon&lt;/b&gt; Nord&quot;</td></tr>"
    ) in html
    assert listed["changes"] == {"name": ["Salon Aurora", "<b>Salon</b> Nord"]}
