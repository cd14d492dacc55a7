"""The OpenAPI schema: every operation documents the error shape for the statuses it can return.

Statuses any operation of a kind can return are added here: 401, 403 and 429 everywhere, 400
where input is read, 404 on a path with an id or a cursor, 415 where a body is read. Statuses
only some actions return (409, 502, 503) are declared on them with `error_responses(...)`.
"""

from __future__ import annotations

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from drf_spectacular.openapi import AutoSchema

from common.api_errors import (  # noqa: F401 (re-exported: the schema's vocabulary)
    ERROR_DESCRIPTIONS,
    ErrorDetailSerializer,
    ErrorSerializer,
    WixErrorSerializer,
    error_responses,
)


class PortalTokenScheme(KnoxTokenScheme):
    """The portal's token check is knox's with a staff check; documented as knox's."""

    target_class = "portal.api.authentication.TokenAuthentication"


class PortalAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._common_error_codes():
            if str(code) not in responses:
                response = error_responses(code)[code]
                responses[str(code)] = self._get_response_for_code(
                    response, str(code), direction=direction
                )
        return dict(sorted(responses.items()))

    def _common_error_codes(self) -> list[int]:
        codes = [401, 403, 429]
        has_body = (
            self.method in {"POST", "PUT", "PATCH"} and self.get_request_serializer() is not None
        )
        # A page_size that is not a whole number from 1 up is refused, too.
        if (
            has_body
            or self._get_filter_parameters()
            or self._has_query_serializer()
            or self._get_pagination_parameters()
        ):
            codes.append(400)
        if has_body:
            codes.append(415)
        if "{" in self.path or self._get_pagination_parameters():
            # A detail path 404s for a foreign id; a list 404s for a cursor it did not make.
            codes.append(404)
        return codes

    def _get_filter_parameters(self):
        parameters = super()._get_filter_parameters()
        for parameter in parameters:
            # An empty filter is no filter (django-filter's rule; the browsable API's filter
            # form sends every field, empty ones too).
            if parameter.get("in") == "query":
                parameter["allowEmptyValue"] = True
        return parameters

    def _has_query_serializer(self) -> bool:
        return any(
            getattr(p, "location", None) == "query" or isinstance(p, type)
            for p in self.get_override_parameters()
        )
