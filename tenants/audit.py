"""Record what people and API clients do, for the audit trail."""

from __future__ import annotations

from typing import Any

from wixapi.errors import WixError

from .models import AuditEvent, AuditOutcome, Tenant


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
