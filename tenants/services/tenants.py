"""Tenants: saving one (created or changed), turning it on or off, checking its credentials.

How a tenant reaches Wix is validated before it is saved: the model's `full_clean`, then
`confirm_instance_site` when `way_in_changed`. Interfaces run that check where they show
errors (the admin form, the API serializer, the command) and then call one verb here.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from wixapi.errors import WixAuthError, WixError

from .. import audit
from ..crypto import DecryptionError
from ..fields import reveal
from ..models import (
    CREDENTIALS_UNREADABLE,
    AuditAction,
    AuditOutcome,
    AuthMethod,
    CredentialsStatus,
    Tenant,
    Via,
)
from ..wix import auth_for, make_client

logger = logging.getLogger(__name__)

ANOTHER_SITE = "This app instance belongs to another Wix site, not to the site {site_id}."


def tenant_verify_credentials(tenant: Tenant, *, user, via: Via) -> bool:
    """Check that the tenant's credentials reach its site; save, audit and return the outcome.

    With an OAuth app a new token is fetched (not a cached one), Wix's Token Info must name
    the tenant's own site, then List Providers is called. The outcome, the time and Wix's
    error (code, message, request id) are saved on the tenant; nothing is raised for a Wix
    or decryption failure.
    """
    error, request_id, failure = "", "", None
    try:
        client = make_client(auth_for(tenant))
        try:
            if tenant.auth_method == AuthMethod.OAUTH_APP:
                site_id = client.instance_site_id()
                if site_id != tenant.site_id.lower():
                    error = ANOTHER_SITE.format(site_id=tenant.site_id)
            if not error:
                client.list_providers()
        finally:
            request_id = client.last_request_id
    except WixError as exc:
        error, failure = str(exc), exc
    except DecryptionError:
        error = CREDENTIALS_UNREADABLE
    before = tenant.credentials_status
    tenant.credentials_status = CredentialsStatus.FAILED if error else CredentialsStatus.OK
    tenant.credentials_error = error[:500]
    tenant.credentials_checked_at = timezone.now()
    with transaction.atomic():
        tenant.save(
            update_fields=["credentials_status", "credentials_error", "credentials_checked_at"]
        )
        audit.record(
            AuditAction.VERIFY_CREDENTIALS,
            user=user,
            via=via,
            tenant=tenant,
            target=tenant,
            changes=audit.changes_between(
                {"credentials_status": before}, {"credentials_status": tenant.credentials_status}
            ),
            outcome=AuditOutcome.FAILED if error else AuditOutcome.OK,
            error=failure,
            message=tenant.credentials_error,
            wix_request_id=request_id,
        )
    logger.info("Credentials of tenant %s (site %s): %s", tenant.pk, tenant.site_id, error or "ok")
    return not error


# What the trail records of a tenant, and compares before and after a save. The API key is
# a secret: only whether it was set, replaced or removed is written (audit.secret_change).
RECORDED_FIELDS = ("name", "site_id", "notes", "is_active", "wix_app", "instance_id")
WAY_IN = ("site_id", "wix_app", "instance_id", "api_key")


def _recorded(tenant: Tenant) -> dict[str, Any]:
    values = {name: getattr(tenant, name) for name in RECORDED_FIELDS if name != "wix_app"}
    values["wix_app"] = tenant.wix_app.app_id if tenant.wix_app_id else None
    return values


def tenant_save(tenant: Tenant, *, user, via: Via) -> Tenant:
    """Save a new or changed tenant, already validated, and audit what changed.

    A changed way in (site, Wix app, instance, API key) leaves the credentials unverified:
    the last check was of other credentials. The stored row is read once, to compare.
    """
    stored = (
        Tenant.objects.select_related("wix_app").filter(pk=tenant.pk).first()
        if tenant.pk is not None
        else None
    )
    before = _recorded(stored) if stored is not None else {}
    old_key = _key(stored) if stored is not None else ""
    if stored is not None and _way_in(stored) != _way_in(tenant):
        tenant.mark_credentials_unverified()
    with transaction.atomic():
        tenant.save()
        changes = audit.changes_between(before, _recorded(tenant))
        new_key = _key(tenant)
        key = audit.secret_change(bool(old_key), bool(new_key), given=old_key != new_key)
        if key:
            changes["api_key"] = [None, key]
        audit.record(
            _save_action(stored is None, changes),
            user=user,
            via=via,
            tenant=tenant,
            target=tenant,
            changes=changes,
        )
    return tenant


def _save_action(created: bool, changes: dict) -> AuditAction:
    # Ticking "is active" in the admin's form is the API's activate/deactivate: one act, one name.
    if created:
        return AuditAction.CREATE_TENANT
    if changes.keys() == {"is_active"}:
        active = changes["is_active"][1]
        return AuditAction.ACTIVATE_TENANT if active else AuditAction.DEACTIVATE_TENANT
    return AuditAction.UPDATE_TENANT


def _way_in(tenant: Tenant) -> tuple:
    return (tenant.site_id.lower(), tenant.wix_app_id, tenant.instance_id.lower(), _key(tenant))


def _key(tenant: Tenant) -> str:
    """The tenant's API key, to compare in memory; one no configured key decrypts counts as
    the same key until it is replaced."""
    try:
        return reveal(tenant.api_key) or ""
    except DecryptionError:
        return "(unreadable)"


def tenant_set_active(tenant: Tenant, *, active: bool, user, via: Via) -> Tenant:
    """Turn the tenant's refreshes on or off; its mirror and history are kept."""
    before = tenant.is_active
    tenant.is_active = active
    with transaction.atomic():
        tenant.save(update_fields=["is_active", "updated_at"])
        audit.record(
            AuditAction.ACTIVATE_TENANT if active else AuditAction.DEACTIVATE_TENANT,
            user=user,
            via=via,
            tenant=tenant,
            target=tenant,
            changes=audit.changes_between({"is_active": before}, {"is_active": active}),
        )
    return tenant


def way_in_changed(tenant: Tenant) -> bool:
    """Whether `tenant` (validated, not yet saved) is new, or names another site, Wix app or
    app instance than its stored row: then `confirm_instance_site` must ask Wix again."""
    if tenant.pk is None:
        return True
    stored = Tenant.objects.filter(pk=tenant.pk).values("site_id", "wix_app_id", "instance_id")
    row = stored.first()
    if row is None:
        return True
    return (row["site_id"], row["wix_app_id"], row["instance_id"]) != (
        tenant.site_id.lower(),
        tenant.wix_app_id,
        tenant.instance_id.lower(),
    )


def confirm_instance_site(tenant: Tenant) -> None:
    """Raise ValidationError unless Wix says the tenant's app instance is on its own site.

    Nothing ties an app instance id to a site but Wix: without this check, a tenant could be
    given another client's instance and mirror that client's calendars. Asks Token Info
    with a fresh token; API-key tenants are left alone (Wix itself scopes a key to the
    sites of its account, and `wix-site-id` names the site on every call).
    """
    if tenant.auth_method != AuthMethod.OAUTH_APP:
        return
    try:
        site_id = make_client(auth_for(tenant)).instance_site_id()
    except DecryptionError:
        raise ValidationError(
            {"wix_app": "This Wix app's secret is unreadable: enter it again on its page."}
        ) from None
    except WixAuthError as exc:
        raise ValidationError(
            {"instance_id": f"Wix refused this Wix app and instance: {exc.message} ({exc.code})."}
        ) from None
    except WixError as exc:
        raise ValidationError(
            {
                "instance_id": "Could not confirm with Wix that this app instance belongs to "
                f"the site ({exc.code}); try again in a moment."
            }
        ) from None
    if site_id != tenant.site_id.lower():
        raise ValidationError({"instance_id": ANOTHER_SITE.format(site_id=tenant.site_id)})
