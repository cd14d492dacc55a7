"""Typed failures of calls to the Wix REST API.

Every failure the client sees becomes one of these, never a `requests` exception, so
callers catch by meaning: `WixAuthError` (our credentials), `WixNotFound`,
`WixRateLimited`, `WixUnavailable` (5xx, timeouts, connection errors) and `WixApiError`
for the rest (400, 409, 428, ... with Wix's application error code).

Messages never hold secrets: they are built only from the HTTP status, Wix's error
body and the `x-wix-request-id` header. Error shape: docs/wix-contract.md §3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldViolation:
    """One entry of a 400's `details.validationError.fieldViolations`."""

    field: str
    description: str
    violated_rule: str = ""


class WixError(Exception):
    """Base of every failure talking to Wix.

    `status` is the HTTP status (None when no response came), `code` Wix's application
    error code (or one derived from the status), `request_id` the `x-wix-request-id`.
    """

    default_code = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        field_violations: tuple[FieldViolation, ...] = (),
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.code = code or self.default_code
        self.request_id = request_id
        self.field_violations = field_violations
        self.retry_after = retry_after
        super().__init__(self.__str__())

    def __str__(self) -> str:
        parts = [f"Wix {self.status}" if self.status else "Wix", self.code]
        text = f"{' '.join(parts)}: {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary, safe to store and show."""
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "requestId": self.request_id,
        }


class WixApiError(WixError):
    """Wix answered with an error other than the specific ones below (400, 409, 428, ...)."""

    default_code = "API_ERROR"


class WixValidationError(WixApiError):
    """Wix rejected the request's fields (400 with `validationError.fieldViolations`)."""

    default_code = "INVALID_ARGUMENT"


class WixAuthError(WixError):
    """Our credentials were refused: a bad API key, app secret, instance or token (401/403)."""

    default_code = "UNAUTHENTICATED"


class WixNotFound(WixApiError):
    """The object does not exist on this site (404)."""

    default_code = "NOT_FOUND"


class WixRateLimited(WixError):
    """Wix kept answering 429 after every retry; `retry_after` is its last hint, if any."""

    default_code = "RESOURCE_EXHAUSTED"


class WixUnavailable(WixError):
    """Wix could not be reached or failed on its side (5xx, timeout, connection error)."""

    default_code = "UNAVAILABLE"


class WixInvalidResponse(WixError):
    """Wix answered 2xx with a body that is not the JSON the contract promises."""

    default_code = "INVALID_RESPONSE"


# Codes Wix's SDK derives from the HTTP status when a 4xx has no applicationError
# (docs/wix-contract.md §3).
STATUS_CODES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    428: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# Application codes that ride on a 401/403 but speak of the *calendar* account or the
# site's plan, not of our credentials: they must not trigger a token refetch.
NOT_OUR_CREDENTIALS = frozenset({"BAD_CREDENTIALS", "PREMIUM_FEATURE_NOT_ENABLED"})


@dataclass(frozen=True)
class ErrorBody:
    """What a Wix error body says, parsed leniently (5xx bodies may be empty)."""

    message: str = ""
    code: str | None = None
    description: str = ""
    field_violations: tuple[FieldViolation, ...] = field(default_factory=tuple)


def parse_error_body(payload: Any) -> ErrorBody:
    """Read Wix's standard error shape, or an OAuth (IETF) error, from a decoded body."""
    if not isinstance(payload, dict):
        return ErrorBody()
    if "error" in payload and isinstance(payload.get("error"), str):
        # The token endpoint answers the IETF OAuth way: {"error", "error_description"}.
        return ErrorBody(
            message=str(payload.get("error_description") or payload["error"]),
            code=payload["error"].upper(),
        )
    details = payload.get("details") if isinstance(payload.get("details"), dict) else {}
    app_error = details.get("applicationError") or {}
    validation = details.get("validationError") or {}
    violations = tuple(
        FieldViolation(
            field=str(v.get("field", "")),
            description=str(v.get("description", "")),
            violated_rule=str(v.get("violatedRule", "")),
        )
        for v in validation.get("fieldViolations") or []
        if isinstance(v, dict)
    )
    return ErrorBody(
        message=str(payload.get("message") or app_error.get("description") or ""),
        code=app_error.get("code") or None,
        description=str(app_error.get("description") or ""),
        field_violations=violations,
    )


def error_for_status(
    status: int,
    body: ErrorBody,
    *,
    request_id: str | None,
    retry_after: float | None = None,
) -> WixError:
    """Return the typed error for an HTTP error answer."""
    code = body.code or STATUS_CODES.get(status) or f"HTTP_{status}"
    message = body.message or _default_message(status)
    kwargs: dict[str, Any] = {"status": status, "code": code, "request_id": request_id}
    if status in (401, 403) and code not in NOT_OUR_CREDENTIALS:
        return WixAuthError(message, **kwargs)
    if status == 404:
        return WixNotFound(message, **kwargs)
    if status == 429:
        return WixRateLimited(message, retry_after=retry_after, **kwargs)
    if status >= 500 and status != 501:
        return WixUnavailable(message, **kwargs)
    if status == 400 and body.field_violations:
        return WixValidationError(message, field_violations=body.field_violations, **kwargs)
    return WixApiError(message, **kwargs)


def _default_message(status: int) -> str:
    if status == 429:
        return "Too many requests; Wix asked to slow down"
    if status >= 500:
        return "Wix failed on its side"
    return "Wix refused the request"
