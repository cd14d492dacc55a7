"""One JSON shape for every API failure.

    {"error": {"code": "...", "message": "...", "fields": {...}, "wix": {"code", "requestId"}}}

`fields` appears for invalid input, `wix` when Wix refused or failed.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from connections.operations import ActionRefused
from tenants.crypto import DecryptionError
from wixapi.errors import WixAuthError, WixError, WixRateLimited, WixUnavailable


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with work in progress."


def handle_exception(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, reshaped; Wix and domain errors get their own statuses."""
    if isinstance(exc, WixError):
        return _wix_response(exc)
    if isinstance(exc, ActionRefused):
        fields = {exc.field: [exc.message]} if exc.field else {}
        return _response(400, "invalid", exc.message, fields=fields)
    if isinstance(exc, DecryptionError):
        return _response(
            500, "credentials_unreadable", "The tenant's stored credentials cannot be decrypted."
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = _body("invalid", "The request has invalid fields.", fields=fields)
        return response
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    response.data = _body(str(code), str(detail))
    return response


@csrf_exempt
def unknown_endpoint(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Paths under /api/ that match no route: a 404 in the error shape, not Django's HTML."""
    return JsonResponse(_body("not_found", "No API endpoint at this path."), status=404)


def _wix_response(exc: WixError) -> Response:
    # Wix being down or slow is "unavailable"; Wix refusing what we sent is a bad gateway.
    http = 503 if isinstance(exc, WixUnavailable | WixRateLimited) else 502
    code = "wix_credentials_refused" if isinstance(exc, WixAuthError) else "wix_error"
    response = _response(http, code, exc.message or "Wix refused the request.", wix=exc)
    if isinstance(exc, WixRateLimited) and exc.retry_after:
        response["Retry-After"] = str(int(exc.retry_after))
    return response


def _response(http: int, code: str, message: str, **extra: Any) -> Response:
    return Response(_body(code, message, **extra), status=http)


def _body(
    code: str, message: str, *, fields: Any = None, wix: WixError | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    if wix is not None:
        error["wix"] = {"code": wix.code, "requestId": wix.request_id, "status": wix.status}
    return {"error": error}
