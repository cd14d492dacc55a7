"""The sandbox WSGI app: routing, auth (docs/wix-contract.md §2), faults and the request log."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from . import control, external_calendars, oauth, queries
from .responses import (
    PERMISSION_DENIED,
    TOO_MANY_REQUESTS,
    UNAUTHENTICATED,
    ApiError,
    minimal_error,
    required,
    validation_error,
    wix_error,
)
from .state import BOOKINGS_APP_ID, RequestRecord, Sandbox, Site

EC = "/bookings/v2/external-calendars"
# [U] chosen (docs/wix-contract.md §2.2): a `Bearer ` prefix on the Authorization header is accepted
# too.
ACCEPT_BEARER_PREFIX = True
# Chosen: a site-level call with an API key but no `wix-site-id` is a malformed request
# (400 validationError on the header) rather than an identity problem (401).
MISSING_SITE_HEADER_STATUS = 400
# Body of an injected-fault 200 that isn't JSON.
MALFORMED_BODY = b'{"connections": [{"id": "truncated'

# Route kinds: "site" needs a site-level identity, "account" an API key + wix-account-id,
# "open" needs none (token endpoint, consent page), "control" is the out-of-band test API.
RULES = (
    ("site", "GET", f"{EC}/providers", external_calendars.list_providers),
    ("site", "GET", f"{EC}/connections", external_calendars.list_connections),
    ("site", "POST", f"{EC}/connections:connectByOAuth", external_calendars.connect_by_oauth),
    (
        "site",
        "POST",
        f"{EC}/connections:connectByCredentials",
        external_calendars.connect_by_credentials,
    ),
    ("site", "GET", f"{EC}/connections/<connection_id>", external_calendars.get_connection),
    (
        "site",
        "GET",
        f"{EC}/connections/<connection_id>/calendars",
        external_calendars.list_calendars,
    ),
    (
        "site",
        "PATCH",
        f"{EC}/connections/<connection_id>/sync-config",
        external_calendars.update_sync_config,
    ),
    ("site", "POST", f"{EC}/connections/<connection_id>/disconnect", external_calendars.disconnect),
    ("site", "GET", f"{EC}/events", external_calendars.list_events),
    ("site", "POST", "/calendar/v3/schedules/query", queries.query_schedules),
    ("account", "POST", "/site-list/v2/sites/query", queries.query_sites),
    ("open", "POST", "/oauth2/token", oauth.token),
    ("open", "POST", "/oauth2/token-info", oauth.token_info),
    ("open", "GET", "/_sandbox/oauth/consent/<request_id>", oauth.consent_page),
    ("open", "POST", "/_sandbox/oauth/consent/<request_id>", oauth.consent_answer),
    *(("control", method, path, view) for method, path, view in control.ROUTES),
)


@dataclass
class Caller:
    """Who is calling: the site reached and the app acting (Bookings for API keys)."""

    site: Site
    app_id: str


class SandboxApp:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.url_map = Map(
            [
                Rule(path, methods=[method], endpoint=(kind, view))
                for kind, method, path, view in RULES
            ],
            strict_slashes=False,
        )
        # Bound once: the sandbox answers for any host, and matching only reads the map.
        self.routes = self.url_map.bind("sandbox")

    def __call__(self, environ, start_response):
        request = Request(environ)
        request_id = str(uuid.uuid4())
        site_id: list[str | None] = [request.headers.get("wix-site-id")]
        kind = None
        try:
            (kind, view), values = self.routes.match(request.path, request.method)
            response = self._dispatch(request, kind, view, values, site_id)
        except ApiError as error:
            response = error.response
        except HTTPException as error:
            response = _not_routed(error)
        response.headers["x-wix-request-id"] = request_id
        if kind != "control" and not request.path.startswith("/_sandbox/"):
            self.sandbox.record(
                RequestRecord(
                    request.method, request.path, site_id[0], response.status_code, request_id
                )
            )
        return response(environ, start_response)

    def _dispatch(self, request, kind, view, values, site_id) -> Response:
        sb = self.sandbox
        if kind == "control":
            return view(sb, request, **values)
        if kind == "open":
            _sleep(sb.default_latency)
            return view(sb, request, **values)
        if kind == "account":
            _sleep(sb.default_latency)
            return view(sb, request, self._account(request), **values)
        caller = self._caller(request)
        site_id[0] = caller.site.id
        _sleep(sb.latency_for(caller.site.id))
        faults = sb.faults_if_any(caller.site.id)
        if faults is None:
            return view(sb, request, caller, **values)
        stall, retry_after, error_status = faults.take()
        _sleep(stall)
        if retry_after is not None:
            error = wix_error(429, TOO_MANY_REQUESTS, "Too many requests")
            if retry_after >= 0:
                error.response.headers["Retry-After"] = str(retry_after)
            raise error
        if error_status is not None:
            raise minimal_error(error_status)
        response = view(sb, request, caller, **values)
        if response.status_code == 200 and faults.take_malformed():
            response.set_data(MALFORMED_BODY)
        return response

    def _credential(self, request: Request) -> str:
        value = request.headers.get("Authorization", "").strip()
        if ACCEPT_BEARER_PREFIX and value.lower().startswith("bearer "):
            value = value[7:].strip()
        if not value:
            raise wix_error(401, UNAUTHENTICATED, "Missing Authorization header")
        return value

    def _caller(self, request: Request) -> Caller:
        """Resolve the site-level identity (docs/wix-contract.md §2.1 API key + wix-site-id, §2.2
        token)."""
        sb = self.sandbox
        credential = self._credential(request)
        with sb.lock:
            token = sb.tokens.get(credential)
            if token is not None:
                if token.expires_at <= sb.clock():
                    del sb.tokens[credential]
                    raise wix_error(401, UNAUTHENTICATED, "Access token expired")
                return Caller(sb.sites[token.site_id], token.app_id)
            account_id = sb.api_keys.get(credential)
            if account_id is None:
                raise wix_error(401, UNAUTHENTICATED, "Unknown API key or access token")
            site_id = request.headers.get("wix-site-id", "").strip()
            if not site_id:
                if MISSING_SITE_HEADER_STATUS == 400:
                    raise validation_error([required("wix-site-id")], "Missing wix-site-id")
                raise wix_error(401, UNAUTHENTICATED, "Missing wix-site-id")
            site = sb.sites.get(site_id)
            # An unknown site and another account's site look the same to the caller.
            if site is None or site.account_id != account_id:
                raise wix_error(403, PERMISSION_DENIED, "API key has no access to this site")
            return Caller(site, BOOKINGS_APP_ID)

    def _account(self, request: Request) -> str:
        """Resolve the account-level identity: API key + wix-account-id (docs/wix-contract.md
        §2.1)."""
        sb = self.sandbox
        credential = self._credential(request)
        with sb.lock:
            if credential in sb.tokens:
                raise wix_error(403, PERMISSION_DENIED, "App instance tokens are site-level")
            account_id = sb.api_keys.get(credential)
        if account_id is None:
            raise wix_error(401, UNAUTHENTICATED, "Unknown API key")
        asked = request.headers.get("wix-account-id", "").strip()
        if not asked:
            raise validation_error([required("wix-account-id")], "Missing wix-account-id")
        if asked != account_id:
            raise wix_error(403, PERMISSION_DENIED, "API key has no access to this account")
        return account_id


def _sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


def _not_routed(error: HTTPException) -> Response:
    status = error.code or 404
    code = error.name.upper().replace(" ", "_")
    return wix_error(status, code, error.name, error.description or "").response
