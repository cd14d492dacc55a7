"""Record what people and API clients do, for the audit trail."""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache

from wixapi.errors import WixError

from .models import AuditEvent, AuditOutcome, Tenant
from .ratelimit import CacheUnavailable, OutageWarning, reaching_cache

logger = logging.getLogger(__name__)
_cache_down = OutageWarning(logger, "Cache unreachable: refusals are audited without rate limit")

# A refused attempt is recorded once per user, action and tenant in this window: enough to
# show someone probing, without letting a script fill the table with one row a request.
DENIED_WINDOW_SECONDS = 300


def record(
    *,
    user,
    action: str,
    tenant: Tenant | None = None,
    target: Any = None,
    parameters: dict[str, Any] | None = None,
    outcome: str = AuditOutcome.OK,
    error: Exception | None = None,
    message: str = "",
    via: str = "admin",
    wix_request_id: str = "",
) -> AuditEvent:
    """Save and return an AuditEvent; `parameters` must hold nothing secret."""
    error_code = ""
    if isinstance(error, WixError):
        error_code = error.code
        message = message or error.message
        wix_request_id = wix_request_id or (error.request_id or "")
    elif error is not None:
        error_code = type(error).__name__
        message = message or str(error)
    return AuditEvent.objects.create(
        user=user if getattr(user, "pk", None) else None,
        username=getattr(user, "get_username", lambda: "")(),
        tenant=tenant,
        action=action,
        target_type=type(target).__name__ if target is not None else "",
        target_id=str(getattr(target, "pk", "") or "") if target is not None else "",
        target_repr=str(target)[:300] if target is not None else "",
        parameters=parameters or {},
        outcome=outcome,
        error_code=error_code,
        message=message[:2000],
        wix_request_id=wix_request_id,
        via=via,
    )


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
        user=user,
        action=action,
        tenant=tenant,
        target=target,
        outcome=AuditOutcome.DENIED,
        message=message,
        via=via,
    )
