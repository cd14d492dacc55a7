"""Typed views of Wix's JSON, each keeping the payload it came from in `raw`.

Field names mirror the REST JSON in snake_case (docs/wix-contract.md §1). Every field is optional in
Wix's answers, so every attribute has a default; an enum value this code does not know
yet reads as `UNDEFINED` while `raw` keeps what Wix sent.

Wix reference: https://dev.wix.com/docs/rest/business-solutions/bookings/calendar/external-calendar-v2/introduction
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any, TypeVar


class CalendarType(StrEnum):
    UNDEFINED = "UNDEFINED"
    GOOGLE = "GOOGLE"
    I_CAL = "I_CAL"
    OUTLOOK = "OUTLOOK"  # deprecated by Wix in favour of MICROSOFT
    OFFICE_365 = "OFFICE_365"  # deprecated by Wix in favour of MICROSOFT
    MICROSOFT = "MICROSOFT"
    OTHER = "OTHER"


class ConnectMethod(StrEnum):
    UNDEFINED = "UNDEFINED"
    OAUTH = "OAUTH"
    CREDENTIALS = "CREDENTIALS"


class ListEventFromCalendars(StrEnum):
    UNDEFINED = "UNDEFINED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    PRIMARY_CALENDAR_ONLY = "PRIMARY_CALENDAR_ONLY"
    SPECIFIC_CALENDARS = "SPECIFIC_CALENDARS"


class SyncToCalendar(StrEnum):
    UNDEFINED = "UNDEFINED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    PRIMARY_CALENDAR_ONLY = "PRIMARY_CALENDAR_ONLY"
    SPECIFIC_CALENDAR = "SPECIFIC_CALENDAR"
    DEDICATED_CALENDAR = "DEDICATED_CALENDAR"


class Status(StrEnum):
    UNDEFINED = "UNDEFINED"
    CONNECTED = "CONNECTED"
    SYNC_IN_PROGRESS = "SYNC_IN_PROGRESS"
    SYNCED = "SYNCED"
    DISCONNECTED = "DISCONNECTED"
    ERROR = "ERROR"


class ErrorReason(StrEnum):
    UNDEFINED = "UNDEFINED"
    TOKEN_REVOKED = "TOKEN_REVOKED"
    EXTERNAL_CALENDAR_CREATION_FAILED = "EXTERNAL_CALENDAR_CREATION_FAILED"
    EXTERNAL_CALENDAR_DELETED = "EXTERNAL_CALENDAR_DELETED"


class ImportMode(StrEnum):
    """Which one-of key `syncConfig.listEventFromCalendars` carries."""

    PRIMARY = "PRIMARY"  # primaryCalendar: {}
    CALENDARS = "CALENDARS"  # calendars: {calendars: [...]}


class ExportMode(StrEnum):
    """Which one-of key `syncConfig.syncToCalendar` carries."""

    PRIMARY = "PRIMARY"  # primaryCalendar: {}
    DEDICATED = "DEDICATED"  # dedicatedCalendar: {}


E = TypeVar("E", bound=StrEnum)


def parse_enum(enum: type[E], value: Any) -> E:
    """Return the member for `value`, or UNDEFINED for an absent or unknown value."""
    try:
        return enum(value)
    except ValueError:
        return enum("UNDEFINED")


def parse_timestamp(value: Any) -> datetime | None:
    """Parse an RFC 3339 timestamp (Wix sends them as strings), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def text_field(data: Mapping[str, Any], key: str) -> str:
    """`data[key]` if it is a string, else "": how every view here reads a text field."""
    return _str(data.get(key))


@dataclass(frozen=True)
class Calendar:
    """A calendar of the connected external account (List Calendars)."""

    id: str
    name: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calendar:
        return cls(id=_str(data.get("id")), name=_str(data.get("name")), raw=data)

    def to_json(self) -> dict[str, str]:
        body = {"id": self.id}
        if self.name:
            body["name"] = self.name
        return body


@dataclass(frozen=True)
class ImportConfig:
    """`syncConfig.listEventFromCalendars`: importing external events into Wix."""

    enabled: bool = False
    mode: ImportMode | None = None
    calendars: tuple[Calendar, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImportConfig:
        if "calendars" in data:
            listed = _dict(data.get("calendars")).get("calendars") or []
            return cls(
                enabled=bool(data.get("enabled")),
                mode=ImportMode.CALENDARS,
                calendars=tuple(Calendar.from_json(c) for c in listed if isinstance(c, Mapping)),
            )
        mode = ImportMode.PRIMARY if "primaryCalendar" in data else None
        return cls(enabled=bool(data.get("enabled")), mode=mode)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"enabled": self.enabled}
        if self.mode is ImportMode.PRIMARY:
            body["primaryCalendar"] = {}
        elif self.mode is ImportMode.CALENDARS:
            # The double nesting is Wix's: calendars.calendars[].
            body["calendars"] = {"calendars": [c.to_json() for c in self.calendars]}
        return body


@dataclass(frozen=True)
class ExportConfig:
    """`syncConfig.syncToCalendar`: exporting Wix bookings to the external calendar."""

    enabled: bool = False
    mode: ExportMode | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExportConfig:
        if "dedicatedCalendar" in data:
            mode: ExportMode | None = ExportMode.DEDICATED
        elif "primaryCalendar" in data:
            mode = ExportMode.PRIMARY
        else:
            mode = None
        return cls(enabled=bool(data.get("enabled")), mode=mode)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"enabled": self.enabled}
        if self.mode is ExportMode.PRIMARY:
            body["primaryCalendar"] = {}
        elif self.mode is ExportMode.DEDICATED:
            body["dedicatedCalendar"] = {}
        return body


@dataclass(frozen=True)
class SyncConfig:
    """A connection's `syncConfig`; `to_json()` is the complete body Update Sync Config wants."""

    list_event_from_calendars: ImportConfig = field(default_factory=ImportConfig)
    sync_to_calendar: ExportConfig = field(default_factory=ExportConfig)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SyncConfig:
        return cls(
            list_event_from_calendars=ImportConfig.from_json(
                _dict(data.get("listEventFromCalendars"))
            ),
            sync_to_calendar=ExportConfig.from_json(_dict(data.get("syncToCalendar"))),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "listEventFromCalendars": self.list_event_from_calendars.to_json(),
            "syncToCalendar": self.sync_to_calendar.to_json(),
        }


@dataclass(frozen=True)
class Provider:
    """An external calendar provider available on a site (List Providers)."""

    id: str
    name: str = ""
    calendar_type: CalendarType = CalendarType.UNDEFINED
    connect_methods: tuple[ConnectMethod, ...] = ()
    update_sync_config: bool = False
    list_event_from_calendars: ListEventFromCalendars = ListEventFromCalendars.UNDEFINED
    sync_to_calendar: SyncToCalendar = SyncToCalendar.UNDEFINED
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Provider:
        features = _dict(data.get("features"))
        return cls(
            id=_str(data.get("id")),
            name=_str(data.get("name")),
            calendar_type=parse_enum(CalendarType, data.get("calendarType")),
            connect_methods=tuple(
                parse_enum(ConnectMethod, m) for m in features.get("connectMethods") or []
            ),
            update_sync_config=bool(features.get("updateSyncConfig")),
            list_event_from_calendars=parse_enum(
                ListEventFromCalendars, features.get("listEventFromCalendars")
            ),
            sync_to_calendar=parse_enum(SyncToCalendar, features.get("syncToCalendar")),
            raw=data,
        )


@dataclass(frozen=True)
class Connection:
    """A schedule's link to an external calendar (Get/List Connections)."""

    id: str
    provider_id: str = ""
    calendar_type: CalendarType = CalendarType.UNDEFINED
    schedule_id: str = ""
    user_id: str = ""
    app_id: str = ""
    external_account_email: str = ""
    status: Status = Status.UNDEFINED
    error_reason: ErrorReason | None = None
    sync_config: SyncConfig = field(default_factory=SyncConfig)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Connection:
        reason = data.get("errorReason")
        return cls(
            id=_str(data.get("id")),
            provider_id=_str(data.get("providerId")),
            calendar_type=parse_enum(CalendarType, data.get("calendarType")),
            schedule_id=_str(data.get("scheduleId")),
            user_id=_str(data.get("userId")),
            app_id=_str(data.get("appId")),
            external_account_email=_str(data.get("externalAccountEmail")),
            status=parse_enum(Status, data.get("status")),
            error_reason=parse_enum(ErrorReason, reason) if reason else None,
            sync_config=SyncConfig.from_json(_dict(data.get("syncConfig"))),
            raw=data,
        )


@dataclass(frozen=True)
class ListConnectionsResult:
    """List Connections' answer. `items` are the connections as Wix sent them; `connections`
    reads them into `Connection`s on first use (a refresh reads only the ones that changed)."""

    items: tuple[Mapping[str, Any], ...]
    # Providers whose connections Wix could not fetch (partialFailure mode only).
    failed_provider_ids: tuple[str, ...] = ()

    @cached_property
    def connections(self) -> tuple[Connection, ...]:
        return tuple(Connection.from_json(item) for item in self.items)

    @property
    def complete(self) -> bool:
        """True when every provider answered, so absence from the list means gone."""
        return not self.failed_provider_ids


@dataclass(frozen=True)
class Event:
    """An event of a connected external calendar (List Events); Wix gives it no id."""

    schedule_id: str = ""
    calendar_type: CalendarType = CalendarType.UNDEFINED
    calendar_name: str = ""
    title: str = ""
    start: datetime | None = None
    end: datetime | None = None
    all_day: bool = False
    schedule_owner_id: str = ""
    schedule_owner_name: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        return cls(
            schedule_id=_str(data.get("scheduleId")),
            calendar_type=parse_enum(CalendarType, data.get("calendarType")),
            calendar_name=_str(data.get("calendarName")),
            title=_str(data.get("title")),
            start=parse_timestamp(data.get("start")),
            end=parse_timestamp(data.get("end")),
            all_day=bool(data.get("allDay")),
            schedule_owner_id=_str(data.get("scheduleOwnerId")),
            schedule_owner_name=_str(data.get("scheduleOwnerName")),
            raw=data,
        )


@dataclass(frozen=True)
class Page:
    """One page of a cursor-paged listing; `next_cursor` is None on the last page."""

    next_cursor: str | None = None
    has_next: bool = False

    @staticmethod
    def paging(data: Mapping[str, Any], key: str = "pagingMetadata") -> tuple[str | None, bool]:
        meta = _dict(data.get(key))
        cursor = _dict(meta.get("cursors")).get("next") or None
        has_next = bool(meta.get("hasNext")) if "hasNext" in meta else bool(cursor)
        return (cursor if has_next else None), has_next and bool(cursor)


@dataclass(frozen=True)
class EventsPage(Page):
    events: tuple[Event, ...] = ()
    failed_provider_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Schedule:
    """A calendar schedule (Calendar Schedules v3); staff schedules name the staff member."""

    id: str
    name: str = ""
    external_id: str = ""
    app_id: str = ""
    status: str = ""
    time_zone: str = ""
    default_title: str = ""
    created_date: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Schedule:
        return cls(
            id=_str(data.get("id")),
            name=_str(data.get("name")),
            external_id=_str(data.get("externalId")),
            app_id=_str(data.get("appId")),
            status=_str(data.get("status")),
            time_zone=_str(data.get("timeZone")),
            default_title=_str(data.get("defaultTitle")),
            created_date=parse_timestamp(data.get("createdDate")),
            raw=data,
        )


@dataclass(frozen=True)
class SchedulesPage(Page):
    """A page of Query Schedules: `items` as Wix sent them, `schedules` read on first use."""

    items: tuple[Mapping[str, Any], ...] = ()

    @cached_property
    def schedules(self) -> tuple[Schedule, ...]:
        return tuple(Schedule.from_json(item) for item in self.items)


@dataclass(frozen=True)
class Site:
    """A site of a Wix account (Site List v2, Query Sites)."""

    id: str
    name: str = ""
    display_name: str = ""
    published: bool = False
    premium: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Site:
        return cls(
            id=_str(data.get("id")),
            name=_str(data.get("name")),
            display_name=_str(data.get("displayName")),
            published=bool(data.get("published")),
            premium=bool(data.get("premium")),
            raw=data,
        )


@dataclass(frozen=True)
class SitesPage(Page):
    sites: tuple[Site, ...] = ()


@dataclass(frozen=True)
class TokenInfo:
    """What Wix says of an access token (POST /oauth2/token-info).

    [U] The contract confirms `clientId` and `instanceId`; `siteId` (and `accountId`) are
    what the Token Info reference documents for an app instance's token, unconfirmed
    against a live site. The portal relies on `siteId` to tie an instance to its site:
    here, and only here, is that assumption read.
    """

    client_id: str | None = None
    instance_id: str | None = None
    site_id: str | None = None
    account_id: str | None = None
    active: bool | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenInfo:
        def text(key: str) -> str | None:
            value = data.get(key)
            return value.lower() if isinstance(value, str) and value else None

        active = data.get("active")
        return cls(
            client_id=text("clientId"),
            instance_id=text("instanceId"),
            site_id=text("siteId"),
            account_id=text("accountId"),
            active=active if isinstance(active, bool) else None,
        )


@dataclass(frozen=True)
class AccessToken:
    """An OAuth access token for one app instance (POST /oauth2/token)."""

    token: str = field(repr=False)
    expires_in: int = 14400
    token_type: str = "Bearer"
