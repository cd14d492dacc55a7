"""The API's error vocabulary that apps raise and document: below the apps that use it.

`portal.api.errors` turns exceptions into the one error shape; these are the exceptions an
app's view may raise, and the schema pieces an app's view declares for its rarer statuses.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with work in progress."


class Unavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "unavailable"
    default_detail = "The service is unavailable for now; try again in a minute."


ERROR_DESCRIPTIONS = {
    400: "Invalid input; `fields` names each bad field.",
    401: "No token, or an expired or revoked one.",
    403: "The user has no tenants, or only views this one and acting needs the operator role.",
    404: "No such object among the user's tenants (another tenant's objects are 404 too).",
    409: "A refresh of this tenant is already running or queued.",
    415: "The request body's Content-Type is not one the operation reads (send JSON).",
    429: "Too many requests with this token; retry after `Retry-After` seconds.",
    502: "Wix refused the request; `wix` carries Wix's code and request id.",
    503: "Wix is unavailable or rate-limited us (`wix` carries Wix's code and request id), "
    "or the portal's cache is (code `lock_unavailable`).",
}


class WixErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Wix's application error code.")
    requestId = serializers.CharField(  # the JSON key, as Wix spells it
        allow_null=True, help_text="Wix's x-wix-request-id, for Wix support."
    )
    status = serializers.IntegerField(
        allow_null=True, help_text="Wix's HTTP status; null when no answer came."
    )


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable: invalid, not_found, conflict, ...")
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        help_text="For invalid input: field name to a list of messages (nested for nested input).",
    )
    wix = WixErrorSerializer(required=False)
    requestId = serializers.CharField(  # the JSON key, as in `wix`
        required=False,
        help_text="For an unexpected error (500): the id its details are logged under.",
    )


class ErrorSerializer(serializers.Serializer):
    """The one shape of every failure."""

    error = ErrorDetailSerializer()


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """`extend_schema(responses={200: X, **error_responses(502, 503)})` for the rarer statuses."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
        for code in codes
    }
