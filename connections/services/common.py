"""What the verbs share: the tenant's client, the audit of a failure, a connection's changes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tenants import audit
from tenants.crypto import DecryptionError
from tenants.models import CREDENTIALS_UNREADABLE, AuditAction, AuditOutcome, Tenant, Via
from tenants.wix import client_for as _client_for
from wixapi.client import WixClient
from wixapi.errors import WixError

from ..models import Connection
from .errors import ActionRefused


def client_for(tenant: Tenant) -> WixClient:
    """The tenant's Wix client; a secret that no key decrypts refuses the verb."""
    try:
        return _client_for(tenant)
    except DecryptionError:
        raise ActionRefused(CREDENTIALS_UNREADABLE) from None


@contextmanager
def failure_audited(
    action: AuditAction,
    *,
    user,
    via: Via,
    tenant: Tenant,
    target: Any,
    parameters: dict[str, Any] | None = None,
) -> Iterator[None]:
    """Audit a `WixError` or `ActionRefused` raised in the block as FAILED (with Wix's code,
    message and request id), then let it go on: nothing was written."""
    try:
        yield
    except (WixError, ActionRefused) as exc:
        audit.record(
            action,
            user=user,
            via=via,
            tenant=tenant,
            target=target,
            parameters=parameters,
            outcome=AuditOutcome.FAILED,
            error=exc,
        )
        raise


def connection_changes(before: Connection | None, after: Connection) -> dict[str, list[Any]]:
    """{field: [old, new]} of what a verb changed on a connection, in Wix's names; every
    field of a connection new to the mirror (`before` None) is [None, value]."""
    return audit.changes_between(_tracked(before) if before else {}, _tracked(after))


def _tracked(connection: Connection) -> dict[str, Any]:
    return {
        "status": connection.status or None,
        "errorReason": connection.error_reason or None,
        "syncConfig": connection.raw.get("syncConfig"),
        "externalAccountEmail": connection.external_account_email or None,
    }
