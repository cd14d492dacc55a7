"""Tenant verbs that talk to Wix."""

from __future__ import annotations

import logging

from django.utils import timezone

from wixapi.client import OAuthAppAuth
from wixapi.errors import WixError

from .crypto import DecryptionError
from .models import CredentialsStatus, Tenant
from .wix import auth_for, make_client

logger = logging.getLogger(__name__)


def verify_credentials(tenant: Tenant) -> bool:
    """Check that the tenant's credentials reach its site; record and return the outcome.

    With an OAuth app a new token is fetched (not a cached one), then List Providers is
    called. The outcome, the time and Wix's error (code, message, request id) are saved
    on the tenant; nothing is raised for a Wix or decryption failure.
    """
    error = ""
    try:
        auth = auth_for(tenant)
        client = make_client(auth)
        if isinstance(auth, OAuthAppAuth):
            client.create_access_token(
                app_id=auth.app_id, app_secret=auth.app_secret, instance_id=auth.instance_id
            )
        client.list_providers()
    except WixError as exc:
        error = str(exc)
    except DecryptionError as exc:
        error = str(exc)
    tenant.credentials_status = CredentialsStatus.FAILED if error else CredentialsStatus.OK
    tenant.credentials_error = error[:500]
    tenant.credentials_checked_at = timezone.now()
    tenant.save(update_fields=["credentials_status", "credentials_error", "credentials_checked_at"])
    logger.info("Credentials of tenant %s (site %s): %s", tenant.pk, tenant.site_id, error or "ok")
    return not error
