"""JSON responses and the Wix error shapes (docs/wix-contract.md §3)."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

# Codes for errors docs/wix-contract.md §3 leaves without an application code; the SDK derives such
# codes from the status text, so these mirror that naming.
UNAUTHENTICATED = "UNAUTHENTICATED"
PERMISSION_DENIED = "PERMISSION_DENIED"
NOT_FOUND = "NOT_FOUND"
TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"


class ApiError(Exception):
    """Raised by handlers; becomes a Wix error response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def json_response(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def wix_error(
    status: int, code: str, message: str, description: str = "", data: dict | None = None
) -> ApiError:
    body = {
        "message": message,
        "details": {
            "applicationError": {
                "code": code,
                "description": description or message,
                "data": data or {},
            }
        },
    }
    return ApiError(json_response(body, status))


def validation_error(violations: list[dict[str, Any]], message: str = "") -> ApiError:
    for violation in violations:
        violation.setdefault("ruleName", violation.get("violatedRule", ""))
        violation.setdefault("data", {})
    body = {
        "message": message or violations[0]["description"],
        "details": {"validationError": {"fieldViolations": violations}},
    }
    return ApiError(json_response(body, 400))


def violation(field: str, description: str, rule: str = "INVALID_VALUE") -> dict[str, Any]:
    return {"field": field, "description": description, "violatedRule": rule, "data": {}}


def required(field: str) -> dict[str, Any]:
    return violation(field, "must not be empty", "REQUIRED_FIELD")


def minimal_error(status: int, message: str = "") -> ApiError:
    """A 5xx with an empty (message "") or minimal body, as docs/wix-contract.md §3 allows."""
    if not message:
        return ApiError(Response(b"", status=status))
    return ApiError(json_response({"message": message, "details": {}}, status))


def oauth_error(status: int, error: str, description: str) -> ApiError:
    """IETF OAuth error body (RFC 6749 §5.2) used by /oauth2/token (docs/wix-contract.md §2.2)."""
    return ApiError(json_response({"error": error, "error_description": description}, status))
