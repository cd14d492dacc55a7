"""One JSON shape for every API failure.

    {"error": {"code": "...", "message": "...", "fields": {...}, "wix": {"code", "requestId"}}}

`fields` appears for invalid input, `wix` when Wix refused or failed. An unexpected error is
a 500 with `requestId`, the id its traceback is logged under; the body never carries the
exception's text (it may quote a query or a secret).
"""

from __future__ import annotations

import logging
import sys
import uuid
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from common.api_errors import Conflict, Unavailable  # noqa: F401 (raised by views)
from connections.services.errors import ActionRefused
from tenants import access
from tenants.crypto import DecryptionError
from wixapi.errors import WixAuthError, WixError, WixRateLimited, WixUnavailable

logger = logging.getLogger(__name__)

SERVER_ERROR_MESSAGE = (
    "The portal failed to answer this request; quote the request id when reporting it."
)


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
    if isinstance(exc, access.NotVisible):
        exc = exceptions.NotFound(str(exc))
    elif isinstance(exc, access.ViewOnly):
        exc = exceptions.PermissionDenied(str(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        # Not an API exception: DRF would re-raise it and Django answer with its HTML page.
        set_rollback()
        return Response(_server_error_body(exc), status=500)
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


def is_api_request(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    """Django's handler500: JSON for /api/ paths (errors raised outside an API view, e.g. in
    a middleware), Django's page elsewhere."""
    if not is_api_request(request):
        return defaults.server_error(request, template_name)
    return JsonResponse(_server_error_body(sys.exc_info()[1]), status=500)


def bad_request(
    request: HttpRequest, exception: Exception, template_name: str = "400.html"
) -> HttpResponse:
    """Django's handler400 (a disallowed Host, a suspicious request): JSON for /api/ paths."""
    if not is_api_request(request):
        return defaults.bad_request(request, exception, template_name)
    return JsonResponse(_body("bad_request", "The request is malformed."), status=400)


def _server_error_body(exc: BaseException | None) -> dict[str, Any]:
    request_id = uuid.uuid4().hex
    logger.error(
        "Unhandled error in an API request (request id %s)",
        request_id,
        exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else False,
    )
    body = _body("server_error", SERVER_ERROR_MESSAGE)
    body["error"]["requestId"] = request_id
    return body


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
