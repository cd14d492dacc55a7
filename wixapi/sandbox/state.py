"""In-memory Wix state: sites, providers, schedules, connections, credentials, faults.

Every mutation happens under `Sandbox.lock` because the HTTP server is threaded. Connection
`sync_config` dicts are replaced, never mutated, so readers may keep a reference.
"""

from __future__ import annotations

import base64
import random
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import shapes, syncconfig

BOOKINGS_APP_ID = "13d21c63-b5ec-5912-8397-c3a5ddb27a97"  # docs/wix-contract.md §4
DEFAULT_TOKEN_LIFETIME_SECONDS = 14400  # docs/wix-contract.md §2.2
CONNECTION_ID_LENGTH = 160  # docs/wix-contract.md §0: opaque, ~150-200 URL-safe alphanumerics
_B64_TO_ALNUM = str.maketrans("-_", "xy")

STATUSES = ("CONNECTED", "SYNC_IN_PROGRESS", "SYNCED", "DISCONNECTED", "ERROR")
ERROR_REASONS = ("TOKEN_REVOKED", "EXTERNAL_CALENDAR_CREATION_FAILED", "EXTERNAL_CALENDAR_DELETED")

# (name, calendarType, connectMethods, updateSyncConfig, listEventFromCalendars, syncToCalendar)
DEFAULT_PROVIDERS = (
    ("Google", "GOOGLE", ("OAUTH",), True, "SPECIFIC_CALENDARS", "DEDICATED_CALENDAR"),
    ("Microsoft", "MICROSOFT", ("OAUTH",), True, "SPECIFIC_CALENDARS", "PRIMARY_CALENDAR_ONLY"),
    # Chosen: iCal can't change its sync config, so one provider exercises
    # `features.updateSyncConfig = false` (Update Sync Config answers 428).
    ("Apple iCal", "I_CAL", ("CREDENTIALS",), False, "PRIMARY_CALENDAR_ONLY", "NOT_SUPPORTED"),
)
# [U] chosen: a successful connect replaces the schedule's earlier connection to the same
# provider (whatever its status), so a reconnect after TOKEN_REVOKED leaves one connection.
REPLACE_EXISTING_ON_CONNECT = True
# Chosen rule for Connect By Credentials: any password starting with this prefix is wrong.
WRONG_PASSWORD_PREFIX = "wrong"


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Provider:
    id: str
    name: str
    calendar_type: str
    connect_methods: tuple[str, ...]
    update_sync_config: bool
    list_event_from_calendars: str
    sync_to_calendar: str


@dataclass
class Schedule:
    id: str
    name: str
    external_id: str  # the staff resource id (docs/wix-contract.md §4)
    user_id: str  # the Wix user owning the schedule; becomes connection.userId
    status: str = "ACTIVE"
    time_zone: str = "Europe/London"
    app_id: str = BOOKINGS_APP_ID
    default_capacity: int = 1
    created_date: str = field(default_factory=_now_iso)


@dataclass
class Connection:
    id: str
    site_id: str
    provider_id: str
    calendar_type: str
    schedule_id: str
    user_id: str | None  # None: the connection JSON has no `userId` (docs' List Connections)
    app_id: str | None  # None: no `appId`, likewise
    status: str
    sync_config: dict[str, Any]
    error_reason: str | None = None
    email: str | None = None
    # The external account's calendars (List Calendars); None: derived from the id.
    calendars: list[dict[str, str]] | None = None


@dataclass
class Site:
    id: str
    name: str
    account_id: str
    premium: bool
    created_date: str = field(default_factory=_now_iso)
    providers: dict[str, str] = field(default_factory=dict)  # calendarType -> provider id
    provider_records: dict[str, Provider] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)
    connections: dict[str, Connection] = field(default_factory=dict)


@dataclass
class AccessToken:
    site_id: str
    app_id: str
    instance_id: str
    expires_at: float


@dataclass
class ConsentRequest:
    id: str
    site_id: str
    schedule_id: str
    provider_id: str
    redirect_url: str
    app_id: str
    used: bool = False


@dataclass
class RequestRecord:
    method: str
    path: str
    site_id: str | None
    status: int
    request_id: str = ""


class Faults:
    """Faults injected into one site's API calls; setters chain and count down per call."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self.clear()

    def clear(self) -> Faults:
        with self._lock:
            self.latency_seconds: float | None = None
            self.rate_limit_times, self.retry_after = 0, 1
            self.error_times, self.error_status = 0, 500
            self.stall_times, self.stall_seconds = 0, 0.0
            self.malformed_times = 0
            self.failing_providers: set[str] = set()
        return self

    def latency(self, seconds: float | None) -> Faults:
        """Add `seconds` to every call of the site (None: back to the sandbox default)."""
        self.latency_seconds = seconds
        return self

    def rate_limit(self, times: int = 1, retry_after: int | None = 1) -> Faults:
        """Answer the next `times` calls with 429 and `Retry-After` (omitted when None)."""
        with self._lock:
            self.rate_limit_times, self.retry_after = times, retry_after
        return self

    def server_error(self, times: int = 1, status: int = 500) -> Faults:
        with self._lock:
            self.error_times, self.error_status = times, status
        return self

    def stall(self, seconds: float, times: int = 1) -> Faults:
        """Sleep `seconds` before answering the next `times` calls (for client timeouts)."""
        with self._lock:
            self.stall_times, self.stall_seconds = times, seconds
        return self

    def malformed_json(self, times: int = 1) -> Faults:
        """Answer the next `times` successful calls with 200 and a body that isn't JSON."""
        with self._lock:
            self.malformed_times = times
        return self

    def fail_provider(self, provider_id: str) -> Faults:
        """Make the provider's connections unreachable (a partial failure, docs/wix-contract.md
        §1.3)."""
        with self._lock:
            self.failing_providers.add(provider_id)
        return self

    def restore_provider(self, provider_id: str) -> Faults:
        with self._lock:
            self.failing_providers.discard(provider_id)
        return self

    def take(self) -> tuple[float, int | None, int | None]:
        """Consume one call: return (stall seconds, 429 retry-after or None, error status or None).

        The 429 retry-after is -1 when the header should be omitted.
        """
        with self._lock:
            stall = 0.0
            if self.stall_times > 0:
                self.stall_times -= 1
                stall = self.stall_seconds
            if self.rate_limit_times > 0:
                self.rate_limit_times -= 1
                return stall, (-1 if self.retry_after is None else self.retry_after), None
            if self.error_times > 0:
                self.error_times -= 1
                return stall, None, self.error_status
            return stall, None, None

    def take_malformed(self) -> bool:
        with self._lock:
            if self.malformed_times > 0:
                self.malformed_times -= 1
                return True
            return False


class Sandbox:
    """A stateful stand-in for the Wix REST API; serve it with `wixapi.sandbox.serve`."""

    def __init__(self, *, seed: int | None = None) -> None:
        self.lock = threading.RLock()
        self._rng = random.Random(seed)
        self.url: str | None = None  # set by serve()
        self.sites: dict[str, Site] = {}
        self.api_keys: dict[str, str] = {}  # key -> account id
        self.apps: dict[str, str] = {}  # app id -> secret
        self.instances: dict[str, tuple[str, str]] = {}  # instance id -> (app id, site id)
        self.tokens: dict[str, AccessToken] = {}
        self.consents: dict[str, ConsentRequest] = {}
        self.requests: list[RequestRecord] = []
        self.token_lifetime_seconds: int = DEFAULT_TOKEN_LIFETIME_SECONDS
        self.default_latency: float = 0.0  # seconds added to every API call of every site
        self._faults: dict[str, Faults] = {}
        self.clock = time.time  # replaceable in tests to age tokens

    # ids ---------------------------------------------------------------------------------
    def new_guid(self) -> str:
        with self.lock:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def new_connection_id(self) -> str:
        with self.lock:
            raw = self._rng.randbytes(CONNECTION_ID_LENGTH * 3 // 4)
        # Base64 with its two symbols mapped to letters: alphanumerics only, and fast for fleets.
        return base64.urlsafe_b64encode(raw).decode().translate(_B64_TO_ALNUM)

    # sites, providers, schedules, connections ---------------------------------------------
    def add_site(
        self,
        name: str = "Site",
        premium: bool = True,
        account_id: str | None = None,
        with_default_providers: bool = True,
    ) -> Site:
        """Create a site (in a new account unless `account_id` is given) and return it."""
        with self.lock:
            site = Site(
                id=self.new_guid(),
                name=name,
                account_id=account_id or self.new_guid(),
                premium=premium,
            )
            self.sites[site.id] = site
            if with_default_providers:
                for spec in DEFAULT_PROVIDERS:
                    self.add_provider(site.id, *spec)
            return site

    def add_provider(
        self,
        site_id: str,
        name: str,
        calendar_type: str,
        connect_methods: tuple[str, ...] = ("OAUTH",),
        update_sync_config: bool = True,
        list_event_from_calendars: str = "SPECIFIC_CALENDARS",
        sync_to_calendar: str = "NOT_SUPPORTED",
        *,
        provider_id: str | None = None,
    ) -> str:
        """Add a provider to the site (e.g. one an installed app brings); return its id."""
        with self.lock:
            site = self.site(site_id)
            provider = Provider(
                provider_id or self.new_guid(),
                name,
                calendar_type,
                tuple(connect_methods),
                update_sync_config,
                list_event_from_calendars,
                sync_to_calendar,
            )
            site.provider_records[provider.id] = provider
            site.providers.setdefault(calendar_type, provider.id)
            return provider.id

    def add_schedule(
        self,
        site_id: str,
        name: str = "Staff",
        *,
        status: str = "ACTIVE",
        time_zone: str = "Europe/London",
        user_id: str | None = None,
        external_id: str | None = None,
        schedule_id: str | None = None,
    ) -> str:
        """Add a staff schedule to the site; return its id."""
        with self.lock:
            schedule = Schedule(
                id=schedule_id or self.new_guid(),
                name=name,
                external_id=external_id or self.new_guid(),
                user_id=user_id or self.new_guid(),
                status=status,
                time_zone=time_zone,
            )
            self.site(site_id).schedules[schedule.id] = schedule
            return schedule.id

    def add_connection(
        self,
        site_id: str,
        schedule_id: str,
        calendar_type: str = "GOOGLE",
        status: str = "SYNCED",
        error_reason: str | None = None,
        email: str | None = "staff@example.com",
        import_mode: str | None = "DEFAULT",
        export_mode: str | None = "DEFAULT",
        *,
        provider_id: str | None = None,
        app_id: str = BOOKINGS_APP_ID,
    ) -> str:
        """Add a connection as if made earlier on Wix; return its id.

        Modes: import PRIMARY | CALENDARS | None, export PRIMARY | DEDICATED | None;
        "DEFAULT" takes what the provider offers a new connection. Raises ValueError when the
        provider can't do the asked modes, or when `error_reason` doesn't match `status`.
        """
        with self.lock:
            site = self.site(site_id)
            schedule = site.schedules[schedule_id]
            provider = site.provider_records[provider_id or site.providers[calendar_type]]
            if status not in STATUSES:
                raise ValueError(f"status must be one of {STATUSES}")
            if status == "ERROR":
                error_reason = error_reason or "TOKEN_REVOKED"
                if error_reason not in ERROR_REASONS:
                    raise ValueError(f"error_reason must be one of {ERROR_REASONS}")
            elif error_reason is not None:
                raise ValueError("error_reason is only kept with status ERROR")
            conn_id = self.new_connection_id()
            config = self._initial_sync_config(conn_id, provider, import_mode, export_mode)
            reason = syncconfig.unsupported_reason(config, provider)
            if reason:
                raise ValueError(reason)
            site.connections[conn_id] = Connection(
                id=conn_id,
                site_id=site_id,
                provider_id=provider.id,
                calendar_type=provider.calendar_type,
                schedule_id=schedule.id,
                user_id=schedule.user_id,
                app_id=app_id,
                status=status,
                error_reason=error_reason,
                email=email,
                sync_config=config,
            )
            return conn_id

    def add_listed_connection(
        self, site_id: str, data: dict[str, Any], *, calendars: list[dict[str, str]] | None = None
    ) -> str:
        """Add a connection exactly as Wix lists it (its REST JSON); return its id.

        Keys `data` leaves out stay out of every answer, and its syncConfig is kept as given,
        whatever the provider's features say: Wix itself makes such connections (the docs'
        List Connections example). `calendars` are the account's calendars for List Calendars.
        """
        with self.lock:
            site = self.site(site_id)
            if data["providerId"] not in site.provider_records:
                raise ValueError(f"unknown provider {data['providerId']}")
            site.connections[data["id"]] = Connection(
                id=data["id"],
                site_id=site_id,
                provider_id=data["providerId"],
                calendar_type=data["calendarType"],
                schedule_id=data["scheduleId"],
                user_id=data.get("userId"),
                app_id=data.get("appId"),
                status=data["status"],
                error_reason=data.get("errorReason"),
                email=data.get("externalAccountEmail"),
                sync_config=shapes.copy_json(data.get("syncConfig", {})),
                calendars=[dict(c) for c in calendars] if calendars is not None else None,
            )
            return data["id"]

    def connect(
        self, site_id: str, schedule_id: str, provider_id: str, *, email: str, app_id: str
    ) -> str:
        """Create the connection a successful connect flow makes (status CONNECTED)."""
        with self.lock:
            site = self.site(site_id)
            if REPLACE_EXISTING_ON_CONNECT:
                for old in list(site.connections.values()):
                    if old.schedule_id == schedule_id and old.provider_id == provider_id:
                        del site.connections[old.id]
            return self.add_connection(
                site_id,
                schedule_id,
                status="CONNECTED",
                email=email,
                provider_id=provider_id,
                app_id=app_id,
            )

    def _initial_sync_config(self, conn_id, provider, import_mode, export_mode):
        default_import, default_export = syncconfig.default_modes(
            provider.list_event_from_calendars, provider.sync_to_calendar
        )
        import_mode = default_import if import_mode == "DEFAULT" else import_mode
        export_mode = default_export if export_mode == "DEFAULT" else export_mode
        # CALENDARS mode picks the first two of the account's calendars (Primary and one more).
        calendars = shapes.calendars_for(conn_id)[:2] if import_mode == "CALENDARS" else []
        return {
            "listEventFromCalendars": syncconfig.import_config(import_mode, calendars),
            "syncToCalendar": syncconfig.export_config(export_mode, provider.sync_to_calendar),
        }

    # credentials ---------------------------------------------------------------------------
    def create_api_key(self, account_id: str) -> str:
        """Return a new API key that reaches the sites of `account_id`."""
        key = "IST." + secrets.token_urlsafe(48)
        with self.lock:
            self.api_keys[key] = account_id
        return key

    def create_app(self) -> tuple[str, str]:
        """Register an OAuth app; return (app id, app secret)."""
        app_id, secret = self.new_guid(), secrets.token_urlsafe(32)
        with self.lock:
            self.apps[app_id] = secret
        return app_id, secret

    def install_app(self, app_id: str, site_id: str) -> str:
        """Install the app on the site; return the app instance id."""
        with self.lock:
            if app_id not in self.apps:
                raise KeyError(app_id)
            self.site(site_id)
            instance_id = self.new_guid()
            self.instances[instance_id] = (app_id, site_id)
            return instance_id

    def issue_token(self, app_id: str, instance_id: str) -> str:
        token = "OAUTH2." + secrets.token_urlsafe(64)
        with self.lock:
            site_id = self.instances[instance_id][1]
            expires_at = self.clock() + self.token_lifetime_seconds
            self.tokens[token] = AccessToken(site_id, app_id, instance_id, expires_at)
        return token

    def revoke_access_tokens(self, site_id: str | None = None) -> None:
        """Forget issued access tokens (of one site, or all): their next call gets 401."""
        with self.lock:
            for token, info in list(self.tokens.items()):
                if site_id is None or info.site_id == site_id:
                    del self.tokens[token]

    # Wix-side changes ----------------------------------------------------------------------
    def site(self, site_id: str) -> Site:
        return self.sites[site_id]

    def connection(self, site_id: str, conn_id: str) -> Connection:
        return self.sites[site_id].connections[conn_id]

    def set_connection_error(self, site_id: str, conn_id: str, reason: str = "TOKEN_REVOKED"):
        if reason not in ERROR_REASONS:
            raise ValueError(f"reason must be one of {ERROR_REASONS}")
        with self.lock:
            conn = self.connection(site_id, conn_id)
            conn.status, conn.error_reason = "ERROR", reason

    def set_connection_status(self, site_id: str, conn_id: str, status: str) -> None:
        """Move a connection to a non-ERROR status (e.g. SYNC_IN_PROGRESS -> SYNCED)."""
        if status not in STATUSES or status == "ERROR":
            raise ValueError("use set_connection_error for ERROR")
        with self.lock:
            conn = self.connection(site_id, conn_id)
            conn.status, conn.error_reason = status, None

    def disconnect_on_wix(self, site_id: str, conn_id: str) -> None:
        """Disconnect as Wix does on its own (e.g. the schedule changed owner, docs/wix-contract.md
        §0)."""
        self.set_connection_status(site_id, conn_id, "DISCONNECTED")

    def remove_connection(self, site_id: str, conn_id: str) -> Connection:
        """Drop a connection from Wix (as a deleted schedule would); return it."""
        with self.lock:
            return self.sites[site_id].connections.pop(conn_id)

    def restore_connection(self, site_id: str, conn: Connection) -> None:
        """Put back a connection `remove_connection` dropped, as it was."""
        with self.lock:
            self.sites[site_id].connections[conn.id] = conn

    def set_sync_config(self, site_id: str, conn_id: str, sync_config: dict[str, Any]) -> None:
        """Replace a connection's syncConfig as if changed in the Wix dashboard."""
        with self.lock:
            self.connection(site_id, conn_id).sync_config = dict(sync_config)

    def connection_json(self, site_id: str, conn_id: str) -> dict[str, Any]:
        """Return the connection as the REST API shows it."""
        with self.lock:
            return shapes.connection_json(self.connection(site_id, conn_id))

    # faults and the request log ------------------------------------------------------------
    def faults(self, site_id: str) -> Faults:
        with self.lock:
            if site_id not in self._faults:
                self._faults[site_id] = Faults(self.lock)
            return self._faults[site_id]

    def faults_if_any(self, site_id: str | None) -> Faults | None:
        return self._faults.get(site_id) if site_id else None

    def latency_for(self, site_id: str | None) -> float:
        faults = self.faults_if_any(site_id)
        if faults is not None and faults.latency_seconds is not None:
            return faults.latency_seconds
        return self.default_latency

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def record(self, record: RequestRecord) -> None:
        with self.lock:
            self.requests.append(record)

    def count_requests(
        self, site_id: str | None = None, *, path: str | None = None, method: str | None = None
    ) -> int:
        """Count logged API calls, optionally of one site, path (prefix) and method."""
        with self.lock:
            return sum(
                1
                for r in self.requests
                if (site_id is None or r.site_id == site_id)
                and (path is None or r.path.startswith(path))
                and (method is None or r.method == method.upper())
            )

    def reset_requests(self) -> None:
        with self.lock:
            self.requests.clear()
