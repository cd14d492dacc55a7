"""One webhook attempt over HTTP: requests, a Session per thread, guarded at connect time.

The Session ignores the environment (`trust_env=False`): an HTTPS_PROXY would carry the
request to an address the guard never saw. Redirects are never followed, a redirect is a
failed attempt. Every connection is made by `GuardedConnectionMixin`, which resolves the
host, refuses it unless every address is public (`guard.vet_addresses`) and connects to the
address it vetted; TLS still checks the certificate against the host name. Retries are the
delivery's rows (`alerts.services.deliveries`), never urllib3's.

Nothing here raises for a failed attempt: `post` returns an `Outcome`, whose `error` is a
code and never an exception's text (which would quote the URL).
"""

from __future__ import annotations

import email.utils
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util import connection

from . import guard, signing

EXCERPT_BYTES = 1024
CONNECT_TIMEOUT_MAX = 5.0
USER_AGENT = "CalendarConnectionsPortal-Webhooks/1"
RETRY_AFTER_STATUSES = (429, 503)


class AttemptError:
    """Why an attempt got no usable answer (`Outcome.error`, `DeliveryAttempt.error`)."""

    TIMEOUT = "timeout"
    REFUSED = "refused"
    DNS = "dns"
    CONNECTION = "connection"
    TLS = "tls"
    REDIRECT = "redirect"
    BLOCKED_ADDRESS = "blocked_address"
    BLOCKED_URL = "blocked_url"
    # Not the transport's: no secret of the endpoint could be decrypted, nothing was sent.
    SECRET_UNREADABLE = "secret_unreadable"

    CHOICES = [
        (TIMEOUT, "Timed out"),
        (REFUSED, "Connection refused"),
        (DNS, "Host name did not resolve"),
        (CONNECTION, "Connection failed"),
        (TLS, "TLS failed"),
        (REDIRECT, "Redirect (not followed)"),
        (BLOCKED_ADDRESS, "Blocked: not a public address"),
        (BLOCKED_URL, "Blocked: URL not allowed"),
        (SECRET_UNREADABLE, "Not sent: secret unreadable (rotate it)"),
    ]


@dataclass(frozen=True)
class Outcome:
    status: int | None
    error: str
    excerpt: str
    duration_ms: int
    # Seconds the receiver asked us to wait (Retry-After on 429 and 503), if it said.
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class BlockedConnection(NewConnectionError):
    """The host resolved to an address webhooks may not reach; no connection was made."""


class GuardedConnectionMixin:
    """urllib3 connection whose socket goes only to an address `guard` vetted."""

    def _new_conn(self) -> socket.socket:
        if guard.is_allowed_host(self.host):
            return super()._new_conn()
        try:
            entries = guard.vet_addresses(self._dns_host, self.port)
        except guard.BlockedAddress:
            raise BlockedConnection(self, f"{self.host} is not a public address") from None
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        failure: OSError | None = None
        for entry in entries:
            address = entry[4][0]
            try:
                sock = connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out (connect timeout={self.timeout})"
                ) from exc
            except OSError as exc:
                failure = exc
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        raise NewConnectionError(
            self, f"Failed to establish a new connection: {failure}"
        ) from failure


class GuardedHTTPConnection(GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(GuardedConnectionMixin, HTTPSConnection):
    pass


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": GuardedHTTPConnectionPool,
            "https": GuardedHTTPSConnectionPool,
        }


_local = threading.local()


def session() -> requests.Session:
    """This thread's Session (requests' are not thread-safe), guarded, ignoring the environment."""
    current = getattr(_local, "session", None)
    if current is None:
        current = requests.Session()
        current.trust_env = False
        current.headers["User-Agent"] = USER_AGENT
        adapter = GuardedAdapter(max_retries=0)
        current.mount("https://", adapter)
        current.mount("http://", adapter)
        _local.session = current
    return current


def post(url: str, *, msg_id: str, body: str, keys: Sequence[str], timeout: float) -> Outcome:
    """POST `body` to `url`, signed with each of `keys` and timestamped now; return the outcome.

    Waits at most `timeout` seconds for each of connecting (at most 5) and reading.
    """
    started = time.monotonic()

    def outcome(status=None, error="", excerpt="", retry_after=None) -> Outcome:
        elapsed = int((time.monotonic() - started) * 1000)
        return Outcome(status, error, excerpt, elapsed, retry_after)

    if guard.scheme_error(url):
        return outcome(error=AttemptError.BLOCKED_URL)
    headers = signing.headers(msg_id, body, keys, at=int(time.time()))
    try:
        response = session().post(
            url,
            data=body.encode(),
            headers=headers,
            timeout=(min(CONNECT_TIMEOUT_MAX, timeout), timeout),
            allow_redirects=False,
            stream=True,
        )
    except requests.exceptions.Timeout:
        return outcome(error=AttemptError.TIMEOUT)
    except requests.exceptions.SSLError:
        return outcome(error=AttemptError.TLS)
    except requests.exceptions.ConnectionError as exc:
        return outcome(error=_connection_error(exc))
    except requests.exceptions.RequestException:
        return outcome(error=AttemptError.CONNECTION)
    try:
        raw = response.raw.read(EXCERPT_BYTES, decode_content=True) or b""
    except (HTTPError, OSError):
        # The status arrived; a body cut short or too slow does not change what it said.
        raw = b""
    finally:
        response.close()
    status = response.status_code
    return outcome(
        status=status,
        error=AttemptError.REDIRECT if 300 <= status < 400 else "",
        excerpt=raw.decode("utf-8", errors="replace"),
        retry_after=_retry_after(response) if status in RETRY_AFTER_STATUSES else None,
    )


def _connection_error(exc: requests.exceptions.ConnectionError) -> str:
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(reason, BlockedConnection):
        return AttemptError.BLOCKED_ADDRESS
    if isinstance(reason, NameResolutionError):
        return AttemptError.DNS
    if isinstance(reason, NewConnectionError) and _caused_by(reason, ConnectionRefusedError):
        return AttemptError.REFUSED
    return AttemptError.CONNECTION


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, kind):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds, from a number or an HTTP date; None when absent or unreadable."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
