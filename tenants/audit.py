"""Record what people and API clients do, for the audit trail; and announce it.

`record` is called by service functions only, inside the transaction of the write it
describes, so the row exists exactly when the change does. Once that transaction commits,
`recorded` is sent with the event: the one seam where what happened leaves the service
layer (alerts, issues and webhooks connect here, not to interfaces).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.dispatch import Signal

from wixapi.errors import WixError

from .models import AuditAction, AuditEvent, AuditOutcome, Tenant, Via
from .ratelimit import CacheUnavailable, OutageWarning, reaching_cache

logger = logging.getLogger(__name__)
_cache_down = OutageWarning(logger, "Cache unreachable: refusals are audited without rate limit")

# A refused attempt is recorded once per user, action and tenant in this window: enough to
# show someone probing, without letting a script fill the table with one row a request.
DENIED_WINDOW_SECONDS = 300

# Sent with `event=` (an AuditEvent) once the transaction that recorded it commits.
recorded = Signal()

# How a secret's change is written in `changes`: never its value, nor a hint of it.
SECRET_SET, SECRET_REPLACED, SECRET_REMOVED = "set", "replaced", "removed"


def changes_between(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: [old, new]} for each field of `after` whose value differs from `before`'s."""
    return {
        name: [before.get(name), value]
        for name, value in after.items()
        if before.get(name) != value
    }


def secret_change(had: bool, has: bool, *, given: bool) -> str | None:
    """How a secret field changed, in words that reveal nothing: None when it did not."""
    if not given:
        return None
    if has:
        return SECRET_REPLACED if had else SECRET_SET
    return SECRET_REMOVED if had else None


def record(
    action: AuditAction | str,
    *,
    user,
    via: Via | str,
    tenant: Tenant | None = None,
    target: Any = None,
    parameters: dict[str, Any] | None = None,
    changes: dict[str, list[Any]] | None = None,
    outcome: str = AuditOutcome.OK,
    error: Exception | None = None,
    message: str = "",
    wix_request_id: str = "",
) -> AuditEvent:
    """Save and return an AuditEvent, and send `recorded` once it is committed.

    `parameters` and `changes` must hold nothing secret. A WixError given as `error`
    supplies the code, message and request id.
    """
    error_code = ""
    if isinstance(error, WixError):
        error_code = error.code
        message = message or error.message
        wix_request_id = wix_request_id or (error.request_id or "")
    elif error is not None:
        error_code = type(error).__name__
        message = message or str(error)
    event = AuditEvent.objects.create(
        user=user if getattr(user, "pk", None) else None,
        username=getattr(user, "get_username", lambda: "")(),
        tenant=tenant,
        action=action,
        target_type=type(target).__name__ if target is not None else "",
        target_id=str(getattr(target, "pk", "") or "") if target is not None else "",
        target_repr=str(target)[:300] if target is not None else "",
        parameters=parameters or {},
        changes=changes or {},
        outcome=outcome,
        error_code=error_code,
        message=message[:2000],
        wix_request_id=wix_request_id or "",
        via=via,
    )
    if recorded.has_listeners(AuditEvent):
        transaction.on_commit(lambda: recorded.send(sender=AuditEvent, event=event))
    return event


def record_denied(
    *,
    user,
    action: str,
    tenant: Tenant | None = None,
    target: Any = None,
    message: str = "",
    via: str,
) -> AuditEvent | None:
    """Record a refused attempt as DENIED, at most once per user, action and tenant per
    DENIED_WINDOW_SECONDS; return the event, or None when one was recorded recently.

    Should the cache be unreachable, the refusal is recorded anyway: the trail matters
    more than its size.
    """
    key = f"audit-denied:{getattr(user, 'pk', None)}:{action}:{getattr(tenant, 'pk', None)}"
    try:
        with reaching_cache():
            first = cache.add(key, 1, timeout=DENIED_WINDOW_SECONDS)
    except CacheUnavailable as exc:
        _cache_down(exc)
        first = True
    if not first:
        return None
    return record(
        action,
        user=user,
        tenant=tenant,
        target=target,
        outcome=AuditOutcome.DENIED,
        message=message,
        via=via,
    )
