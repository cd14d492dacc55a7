"""`WixClient`: one method per Wix REST endpoint the portal uses, over HTTP only.

No Django here: the base URL, timeouts and retry policy come in as arguments. Methods
return the typed objects of `wixapi.types` and raise the errors of `wixapi.errors`.

- Timeouts on every call; retries with exponential backoff and jitter on 429, 502, 503,
  504 and connection errors, honouring `Retry-After` up to a cap (urllib3's `Retry`).
  Calls that are not safe to repeat (Connect By Credentials) retry only when the request
  never reached Wix (a refused connection).
- urllib3 connection pools, one per thread and base URL, shared by every client. urllib3
  rather than requests on top of it: a refresh makes thousands of small calls, and requests
  doubled the CPU each one costs (about 1.1 ms against 0.55 ms) for nothing the client
  uses (sessions, cookies, redirects, hooks).
- Two ways in (docs/wix-contract.md §2): an API key, or an OAuth app's client credentials whose
access token is cached until shortly before it expires and fetched again once on a 401.

Wix reference: https://dev.wix.com/docs/rest/business-solutions/bookings/calendar/external-calendar-v2/introduction
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

from . import errors
from .types import (
    AccessToken,
    Calendar,
    Connection,
    Event,
    EventsPage,
    ListConnectionsResult,
    Page,
    Provider,
    Schedule,
    SchedulesPage,
    Site,
    SitesPage,
    SyncConfig,
    TokenInfo,
)

logger = logging.getLogger(__name__)

EXTERNAL_CALENDARS = "/bookings/v2/external-calendars"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# A cached token is replaced this long before Wix says it expires (tokens live 4 h).
TOKEN_REFRESH_MARGIN_SECONDS = 300


@dataclass(frozen=True)
class ApiKeyAuth:
    """An account API key: site calls send `wix-site-id`, account calls `wix-account-id`."""

    api_key: str = field(repr=False)
    site_id: str | None = None
    account_id: str | None = None


@dataclass(frozen=True)
class OAuthAppAuth:
    """An OAuth app's client credentials for one app instance (one site)."""

    app_id: str
    app_secret: str = field(repr=False)
    instance_id: str = ""


Auth = ApiKeyAuth | OAuthAppAuth


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: int = 30
    jitter: float = 0.25


class TokenCache:
    """Thread-safe cache of access tokens per (base URL, app, instance)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}

    def get(self, key: tuple[str, str, str]) -> str | None:
        with self._lock:
            entry = self._tokens.get(key)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]

    def put(self, key: tuple[str, str, str], token: AccessToken) -> None:
        margin = min(TOKEN_REFRESH_MARGIN_SECONDS, token.expires_in / 10)
        with self._lock:
            self._tokens[key] = (token.token, time.monotonic() + token.expires_in - margin)

    def discard(self, key: tuple[str, str, str], token: str) -> None:
        with self._lock:
            if self._tokens.get(key, ("",))[0] == token:
                del self._tokens[key]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


# Tokens are per app instance, not per client object: a process shares them.
default_token_cache = TokenCache()

# Sent with every call (urllib3 sends no User-Agent and asks for no compression itself).
DEFAULT_HEADERS = {
    "Accept": "application/json",
    "User-Agent": "wix-calendar-portal",
    **urllib3.util.make_headers(accept_encoding=True),
}

_local = threading.local()


class _Transport:
    """This thread's connections to one base URL: a keep-alive pool, or a proxy's.

    The environment (proxies and no_proxy, a CA bundle) is read once, when the thread first
    calls the base URL, as requests would read it on every call.
    """

    def __init__(self, base_url: str) -> None:
        ca_certs = (
            os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or os.environ.get("SSL_CERT_FILE")
            or None
        )
        options: dict[str, Any] = {"maxsize": 4, "ca_certs": ca_certs}
        scheme, host = urlsplit(base_url)[:2]
        proxy = urllib.request.getproxies_environment().get(scheme)
        if proxy and not urllib.request.proxy_bypass_environment(host.rsplit(":", 1)[0]):
            self.manager: urllib3.PoolManager = urllib3.ProxyManager(proxy, **options)
        else:
            self.manager = urllib3.PoolManager(**options)
        self.base_url = base_url
        # Without a proxy, calls go straight to the host's pool (PoolManager.urlopen would
        # parse the URL and look the pool up on every call).
        self.pool = (
            None
            if isinstance(self.manager, urllib3.ProxyManager)
            else self.manager.connection_from_url(base_url)
        )

    def urlopen(self, method: str, path: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        if self.pool is not None:
            return self.pool.urlopen(method, path, **kwargs)
        return self.manager.urlopen(method, self.base_url + path, **kwargs)


def _transport(base_url: str) -> _Transport:
    """Return this thread's transport to `base_url`."""
    transports: dict[str, _Transport] | None = getattr(_local, "transports", None)
    if transports is None:
        transports = _local.transports = {}
    transport = transports.get(base_url)
    if transport is None:
        transport = transports[base_url] = _Transport(base_url)
    return transport


@cache
def _retry(policy: RetryPolicy, *, safe: bool) -> Retry:
    """The urllib3 retry for a policy: shared, as `Retry` is never changed (each retry of a
    request gets a new one from `increment`)."""
    if not safe:
        # The request may have reached Wix: repeat it only if the connection was refused.
        return Retry(
            total=policy.max_retries,
            connect=policy.max_retries,
            read=False,
            status=0,
            other=0,
            redirect=0,
            respect_retry_after_header=False,
            raise_on_status=False,
        )
    return Retry(
        total=policy.max_retries,
        redirect=0,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"}),
        backoff_factor=policy.backoff_factor,
        backoff_max=policy.backoff_max,
        backoff_jitter=policy.jitter,
        respect_retry_after_header=True,
        retry_after_max=policy.retry_after_max,
        # Hand back the last 429/5xx so its Wix body and request id reach the error.
        raise_on_status=False,
    )


def rfc3339(value: datetime | str) -> str:
    """Format a datetime as Wix wants it (UTC, `Z`); strings pass through."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("a naive datetime is ambiguous; give it a timezone")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _bool(value: bool) -> str:
    return "true" if value else "false"


class WixClient:
    """Calls the Wix REST API for one site (or one account, for Query Sites).

    `calls` counts HTTP requests sent, retries included, so callers can report the cost.
    `before_request`, if given, is called before each request is sent and may block (a
    request budget) or raise a `WixError` to stop it; urllib3's own retries of a request
    happen inside the adapter and do not call it again. `on_body`, if set, is called with
    the bytes of each successful answer before it is read (to digest what Wix said).
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 3.05,
        retry: RetryPolicy | None = None,
        token_cache: TokenCache | None = None,
        before_request: Callable[[], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.timeout = (connect_timeout, timeout)
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=timeout)
        self.retry = retry or RetryPolicy()
        self.token_cache = token_cache if token_cache is not None else default_token_cache
        self.before_request = before_request
        self.on_body: Callable[[bytes], Any] | None = None
        self.calls = 0
        # Wix's x-wix-request-id of the last answer, success or failure ("" before any, or
        # when Wix sent none): what an audit row cites so Wix support can find the call.
        self.last_request_id = ""

    def __repr__(self) -> str:
        return f"<WixClient {self.base_url} auth={type(self.auth).__name__}>"

    # --- External Calendar v2 (docs/wix-contract.md §1) -------------------------------------------

    def list_providers(self) -> tuple[Provider, ...]:
        """Return the calendar providers available on the site."""
        data = self._request("GET", f"{EXTERNAL_CALENDARS}/providers")
        return tuple(Provider.from_json(p) for p in _items(data, "providers"))

    def get_connection(self, connection_id: str) -> Connection:
        """Return one connection; raises `WixNotFound` for an unknown id."""
        data = self._request("GET", f"{EXTERNAL_CALENDARS}/connections/{_path(connection_id)}")
        return Connection.from_json(_object(data, "connection"))

    def list_connections(
        self,
        *,
        schedule_ids: Sequence[str] = (),
        partial_failure: bool = True,
    ) -> ListConnectionsResult:
        """Return the site's connections and the providers that failed to answer.

        `partial_failure` defaults to True (unlike Wix) because a portal would rather show
        most connections and name the failed providers than show none.
        """
        params: dict[str, Any] = {"partialFailure": _bool(partial_failure)}
        if schedule_ids:
            params["scheduleIds"] = list(schedule_ids)
        data = self._request("GET", f"{EXTERNAL_CALENDARS}/connections", params=params)
        return ListConnectionsResult(
            items=tuple(_items(data, "connections")),
            failed_provider_ids=tuple(data.get("failedProviderIds") or ()),
        )

    def connect_by_oauth(self, *, schedule_id: str, provider_id: str, redirect_url: str) -> str:
        """Start an OAuth connection and return the `oauthUrl` to send the owner to."""
        data = self._request(
            "POST",
            f"{EXTERNAL_CALENDARS}/connections:connectByOAuth",
            payload={
                "scheduleId": schedule_id,
                "providerId": provider_id,
                "redirectUrl": redirect_url,
            },
        )
        url = data.get("oauthUrl")
        if not isinstance(url, str) or not url:
            raise errors.WixInvalidResponse("Wix returned no oauthUrl")
        return url

    def connect_by_credentials(
        self, *, schedule_id: str, provider_id: str, email: str, password: str
    ) -> Connection:
        """Connect a calendar with the account's email and password; return the connection.

        The password is sent once and kept nowhere. Not retried once it may have reached Wix.
        """
        data = self._request(
            "POST",
            f"{EXTERNAL_CALENDARS}/connections:connectByCredentials",
            payload={
                "scheduleId": schedule_id,
                "providerId": provider_id,
                "email": email,
                "password": password,
            },
            safe=False,
        )
        return Connection.from_json(_object(data, "connection"))

    def list_calendars(self, connection_id: str) -> tuple[Calendar, ...]:
        """Return the calendars of the connection's external account."""
        data = self._request(
            "GET", f"{EXTERNAL_CALENDARS}/connections/{_path(connection_id)}/calendars"
        )
        return tuple(Calendar.from_json(c) for c in _items(data, "calendars"))

    def update_sync_config(self, connection_id: str, *, sync_config: SyncConfig) -> Connection:
        """Replace the connection's sync config with the complete one given; return it."""
        data = self._request(
            "PATCH",
            f"{EXTERNAL_CALENDARS}/connections/{_path(connection_id)}/sync-config",
            payload={"syncConfig": sync_config.to_json()},
        )
        return Connection.from_json(_object(data, "connection"))

    def disconnect(self, connection_id: str) -> Connection:
        """Disconnect the connection and return it.

        A repeat raises `WixApiError` with code CONNECTION_ALREADY_DISCONNECTED.
        """
        data = self._request(
            "POST",
            f"{EXTERNAL_CALENDARS}/connections/{_path(connection_id)}/disconnect",
            payload={},
        )
        return Connection.from_json(_object(data, "connection"))

    def list_events(
        self,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        schedule_ids: Sequence[str] = (),
        user_ids: Sequence[str] = (),
        all_day: bool | None = None,
        include_titles: bool = False,
        limit: int | None = None,
        cursor: str | None = None,
        partial_failure: bool = True,
    ) -> EventsPage:
        """Return one page of events between `start` (Wix's `from`) and `end` (`to`).

        `include_titles` asks for the OWN_PI fieldset (calendar name, title, owner name).
        Filters are repeated with the cursor: docs/wix-contract.md §1.9 calls that the safe choice.
        """
        params: dict[str, Any] = {"partialFailure": _bool(partial_failure)}
        if start is not None:
            params["from"] = rfc3339(start)
        if end is not None:
            params["to"] = rfc3339(end)
        if schedule_ids:
            params["scheduleIds"] = list(schedule_ids)
        if user_ids:
            params["userIds"] = list(user_ids)
        if all_day is not None:
            params["allDay"] = _bool(all_day)
        params["fieldsets"] = "OWN_PI" if include_titles else "NO_PI"
        if limit is not None:
            params["cursorPaging.limit"] = limit
        if cursor:
            params["cursorPaging.cursor"] = cursor
        data = self._request("GET", f"{EXTERNAL_CALENDARS}/events", params=params)
        next_cursor, has_next = Page.paging(data)
        return EventsPage(
            events=tuple(Event.from_json(e) for e in _items(data, "events")),
            next_cursor=next_cursor,
            has_next=has_next,
            failed_provider_ids=tuple(data.get("failedProviderIds") or ()),
        )

    def iter_event_pages(self, **filters: Any) -> Iterator[EventsPage]:
        """Yield every page of `list_events(**filters)`, following the cursor."""
        return _follow(lambda cursor: self.list_events(**filters, cursor=cursor))

    def iter_events(self, **filters: Any) -> Iterator[Event]:
        """Yield every event of `list_events(**filters)` across all pages."""
        for page in self.iter_event_pages(**filters):
            yield from page.events

    # --- Calendar Schedules v3 (docs/wix-contract.md §4) ------------------------------------------

    def query_schedules(
        self,
        *,
        filter: Mapping[str, Any] | None = None,
        limit: int = 50,
        cursor: str | None = None,
        include_pi: bool = False,
    ) -> SchedulesPage:
        """Return one page of the site's schedules; later pages send only the cursor."""
        body: dict[str, Any] = {"query": _cursor_query(filter, limit=limit, cursor=cursor)}
        if include_pi:
            body["fields"] = ["PI_FIELDS"]
        data = self._request("POST", "/calendar/v3/schedules/query", payload=body)
        next_cursor, has_next = Page.paging(data)
        return SchedulesPage(
            items=tuple(_items(data, "schedules")),
            next_cursor=next_cursor,
            has_next=has_next,
        )

    def iter_schedule_pages(self, **kwargs: Any) -> Iterator[SchedulesPage]:
        """Yield every page of `query_schedules(**kwargs)`, following the cursor."""
        return _follow(lambda cursor: self.query_schedules(**kwargs, cursor=cursor))

    def iter_schedules(self, **kwargs: Any) -> Iterator[Schedule]:
        """Yield every schedule matching `query_schedules(**kwargs)` across all pages."""
        for page in self.iter_schedule_pages(**kwargs):
            yield from page.schedules

    # --- Site List v2 (docs/wix-contract.md §5), account level ------------------------------------

    def query_sites(
        self,
        *,
        filter: Mapping[str, Any] | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> SitesPage:
        """Return one page of the account's sites (needs `ApiKeyAuth(account_id=...)`)."""
        query = _cursor_query(filter, limit=limit, cursor=cursor)
        data = self._request("POST", "/site-list/v2/sites/query", payload={"query": query})
        # [U] docs/wix-contract.md §5: the metadata object's shape is unconfirmed; read it like
        # pagingMetadata.
        next_cursor, has_next = Page.paging(data, key="metadata")
        return SitesPage(
            sites=tuple(Site.from_json(s) for s in _items(data, "sites")),
            next_cursor=next_cursor,
            has_next=has_next,
        )

    def iter_sites(self, **kwargs: Any) -> Iterator[Site]:
        """Yield every site of the account across all pages."""
        for page in _follow(lambda cursor: self.query_sites(**kwargs, cursor=cursor)):
            yield from page.sites

    # --- OAuth (docs/wix-contract.md §2.2) --------------------------------------------------------

    def create_access_token(self, *, app_id: str, app_secret: str, instance_id: str) -> AccessToken:
        """Return a fresh access token for the app instance; raises `WixAuthError` if refused."""
        try:
            data = self._send(
                "POST",
                "/oauth2/token",
                payload={
                    "grant_type": "client_credentials",
                    "client_id": app_id,
                    "client_secret": app_secret,
                    "instance_id": instance_id,
                },
                headers={},
                safe=True,
            )
        except errors.WixApiError as exc:
            # Token errors are IETF OAuth 4xx (invalid_client, invalid_grant, ...):
            # all of them mean our app credentials or instance are wrong.
            raise errors.WixAuthError(
                exc.message, status=exc.status, code=exc.code, request_id=exc.request_id
            ) from None
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise errors.WixInvalidResponse("Wix returned no access_token")
        return AccessToken(
            token=token,
            expires_in=int(data.get("expires_in") or 14400),
            token_type=str(data.get("token_type") or "Bearer"),
        )

    # --- Plumbing -------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        payload: Any = None,
        safe: bool = True,
    ) -> dict[str, Any]:
        if isinstance(self.auth, OAuthAppAuth):
            key = (self.base_url, self.auth.app_id, self.auth.instance_id)
            token = self._access_token(key)
            try:
                return self._send(
                    method,
                    path,
                    params=params,
                    payload=payload,
                    headers={"Authorization": token},
                    safe=safe,
                )
            except errors.WixAuthError as exc:
                if exc.status != 401:
                    raise
                # The token may have been revoked or expired early: fetch one more, once.
                self.token_cache.discard(key, token)
                token = self._access_token(key)
                return self._send(
                    method,
                    path,
                    params=params,
                    payload=payload,
                    headers={"Authorization": token},
                    safe=safe,
                )
        return self._send(
            method, path, params=params, payload=payload, headers=self._key_headers(), safe=safe
        )

    def _access_token(self, key: tuple[str, str, str]) -> str:
        token = self.token_cache.get(key)
        if token is None:
            assert isinstance(self.auth, OAuthAppAuth)
            fresh = self.create_access_token(
                app_id=self.auth.app_id,
                app_secret=self.auth.app_secret,
                instance_id=self.auth.instance_id,
            )
            self.token_cache.put(key, fresh)
            token = fresh.token
        return token

    def token_info(self, *, access_token: str) -> TokenInfo:
        """Return what Wix knows of an access token: its app, instance and site (Token Info)."""
        data = self._send(
            "POST", "/oauth2/token-info", payload={"token": access_token}, headers={}, safe=True
        )
        return TokenInfo.from_json(data)

    def instance_site_id(self) -> str | None:
        """Return the site of this client's app instance, as Wix's Token Info tells it.

        Needs `OAuthAppAuth`: a fresh access token is fetched (never a cached one), so the
        answer is about the credentials as they are now.
        """
        if not isinstance(self.auth, OAuthAppAuth):
            raise errors.WixAuthError("Token Info needs a Wix app's credentials")
        fresh = self.create_access_token(
            app_id=self.auth.app_id,
            app_secret=self.auth.app_secret,
            instance_id=self.auth.instance_id,
        )
        return self.token_info(access_token=fresh.token).site_id

    def _key_headers(self) -> dict[str, str]:
        if not isinstance(self.auth, ApiKeyAuth):
            raise errors.WixAuthError("No Wix credentials were given for this call")
        # Send one of wix-site-id or wix-account-id, never both (current Wix docs,
        # docs/wix-contract.md §2.1).
        headers = {"Authorization": self.auth.api_key}
        if self.auth.site_id:
            headers["wix-site-id"] = self.auth.site_id
        elif self.auth.account_id:
            headers["wix-account-id"] = self.auth.account_id
        return headers

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        payload: Any = None,
        headers: Mapping[str, str],
        safe: bool,
    ) -> dict[str, Any]:
        if self.before_request is not None:
            self.before_request()
        self.calls += 1
        url = path + ("?" + urlencode(params, doseq=True) if params else "")
        body = None
        request_headers = {**DEFAULT_HEADERS, **headers}
        _check_headers(request_headers)
        if payload is not None:
            body = json.dumps(payload, allow_nan=False).encode()
            request_headers["Content-Type"] = "application/json"
        try:
            response = _transport(self.base_url).urlopen(
                method,
                url,
                body=body,
                headers=request_headers,
                retries=_retry(self.retry, safe=safe),
                timeout=self._timeout,
                redirect=False,
            )
        except HTTPError as exc:
            if _timed_out(exc):
                raise errors.WixUnavailable(
                    f"Wix did not answer {method} {path} within {self.timeout[1]:g} s"
                ) from None
            raise errors.WixUnavailable(
                f"Could not reach Wix for {method} {path}: {type(_reason(exc)).__name__}"
            ) from None
        retries = response.retries.history if response.retries else ()
        self.calls += len(retries)
        request_id = response.headers.get("x-wix-request-id")
        self.last_request_id = request_id or ""
        if response.status >= 400:
            error = errors.error_for_status(
                response.status,
                errors.parse_error_body(_json_or_none(response)),
                request_id=request_id,
                retry_after=_retry_after(response),
            )
            if retries and isinstance(error, errors.WixRateLimited | errors.WixUnavailable):
                error.message += f" (gave up after {len(retries)} retries)"
                error.args = (str(error),)
            logger.warning(
                "Wix %s %s failed: %s %s (request id %s)",
                method,
                path,
                error.status,
                error.code,
                request_id or "-",
            )
            raise error
        if self.on_body is not None:
            self.on_body(response.data)
        data = _json_or_none(response)
        if not isinstance(data, dict):
            raise errors.WixInvalidResponse(
                f"Wix answered {method} {path} with a body that is not a JSON object",
                status=response.status,
                request_id=request_id,
            )
        return data


P = TypeVar("P", bound=Page)


def _follow(fetch: Callable[[str | None], P]) -> Iterator[P]:
    """Yield pages from `fetch(cursor)`, starting with no cursor, until there is no next."""
    cursor = None
    while True:
        page = fetch(cursor)
        yield page
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def _cursor_query(
    filter: Mapping[str, Any] | None, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """A Wix query body: the filter on the first page, only the cursor on later ones."""
    paging: dict[str, Any] = {"limit": limit}
    query: dict[str, Any] = {"cursorPaging": paging}
    if cursor:
        paging["cursor"] = cursor
    elif filter:
        query["filter"] = dict(filter)
    return query


def _check_headers(headers: Mapping[str, str]) -> None:
    """Refuse header values HTTP cannot carry, before the HTTP library sees them.

    A pasted credential with a typographic quote, an emoji or a line break would otherwise
    make http.client raise with the whole value in its message, and from there reach logs,
    task results and error pages. The message here names the header, never its value.
    """
    for name, value in headers.items():
        if not _HEADER_VALUE.fullmatch(value):
            raise errors.WixAuthError(
                f"The {name} header would carry characters HTTP does not allow: the stored "
                "credentials are malformed; enter them again.",
                code="MALFORMED_CREDENTIALS",
            )


# Visible ASCII and inner spaces: what a credential, a site id or a token may hold.
_HEADER_VALUE = re.compile(r"(?:[\x21-\x7e]+(?: [\x21-\x7e]+)*)?")


def _reason(exc: HTTPError) -> BaseException:
    """What went wrong: once retries are exhausted urllib3 wraps it in MaxRetryError."""
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        return exc.reason
    return exc


def _timed_out(exc: HTTPError) -> bool:
    reason = _reason(exc)
    # NewConnectionError (refused) subclasses ConnectTimeoutError, but nothing timed out.
    if isinstance(reason, NewConnectionError):
        return False
    return isinstance(reason, ReadTimeoutError | ConnectTimeoutError | TimeoutError)


def _json_or_none(response: urllib3.BaseHTTPResponse) -> Any:
    try:
        return json.loads(response.data)
    except ValueError:
        return None


def _retry_after(response: urllib3.BaseHTTPResponse) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return float(value)
    except ValueError:
        return None


def _items(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise errors.WixInvalidResponse(f"Wix returned '{key}' that is not a list")
    return [item for item in value if isinstance(item, Mapping)]


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise errors.WixInvalidResponse(f"Wix returned no '{key}' object")
    return value


def _path(segment: str) -> str:
    """Quote an id for a path segment; connection ids are opaque, not guaranteed URL-safe."""
    return quote(segment, safe="")
