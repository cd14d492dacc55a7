"""Tenant verbs that talk to Wix."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.utils import timezone

from wixapi.errors import WixAuthError, WixError

from .crypto import DecryptionError
from .models import CREDENTIALS_UNREADABLE, AuthMethod, CredentialsStatus, Tenant
from .wix import auth_for, make_client

logger = logging.getLogger(__name__)

ANOTHER_SITE = "This app instance belongs to another Wix site, not to the site {site_id}."


def verify_credentials(tenant: Tenant) -> bool:
    """Check that the tenant's credentials reach its site; record and return the outcome.

    With an OAuth app a new token is fetched (not a cached one), Wix's Token Info must name
    the tenant's own site, then List Providers is called. The outcome, the time and Wix's
    error (code, message, request id) are saved on the tenant; nothing is raised for a Wix
    or decryption failure.
    """
    error = ""
    try:
        client = make_client(auth_for(tenant))
        if tenant.auth_method == AuthMethod.OAUTH_APP:
            site_id = client.instance_site_id()
            if site_id != tenant.site_id.lower():
                error = ANOTHER_SITE.format(site_id=tenant.site_id)
        if not error:
            client.list_providers()
    except WixError as exc:
        error = str(exc)
    except DecryptionError:
        error = CREDENTIALS_UNREADABLE
    tenant.credentials_status = CredentialsStatus.FAILED if error else CredentialsStatus.OK
    tenant.credentials_error = error[:500]
    tenant.credentials_checked_at = timezone.now()
    tenant.save(update_fields=["credentials_status", "credentials_error", "credentials_checked_at"])
    logger.info("Credentials of tenant %s (site %s): %s", tenant.pk, tenant.site_id, error or "ok")
    return not error


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
