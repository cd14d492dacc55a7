"""REST JSON for sandbox objects (docs/wix-contract.md §1 shared objects, §4 Schedule, §5 Site) and
events.

Optional fields are omitted when absent, as Wix does (docs/wix-contract.md §0 "Unknown/absent
fields"). External calendars and events are derived from the connection id, so they are stable
across calls without being stored."""

from __future__ import annotations

import hashlib
import random
from datetime import date, datetime, timedelta
from typing import Any

CALENDAR_NAMES = ("Primary", "Work", "Family")
TIMED_TITLES = (
    "Dentist",
    "Team sync",
    "Lunch with Sam",
    "School run",
    "Gym",
    "Doctor",
    "Call with accountant",
    "Yoga class",
    "Parent evening",
    "Car service",
)
ALL_DAY_TITLES = ("Day off", "Conference", "Training day", "Vacation")


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def provider_json(provider) -> dict[str, Any]:
    return {
        "id": provider.id,
        "name": provider.name,
        "calendarType": provider.calendar_type,
        "features": {
            "connectMethods": list(provider.connect_methods),
            "updateSyncConfig": provider.update_sync_config,
            "listEventFromCalendars": provider.list_event_from_calendars,
            "syncToCalendar": provider.sync_to_calendar,
        },
    }


def connection_json(conn, *, copy: bool = True) -> dict[str, Any]:
    """The connection as Wix shows it. `copy=False` shares its sync config (never mutated,
    only replaced) for a response serialized at once: a listing of many is cheaper."""
    data: dict[str, Any] = {
        "id": conn.id,
        "providerId": conn.provider_id,
        "calendarType": conn.calendar_type,
        "scheduleId": conn.schedule_id,
    }
    if conn.user_id is not None:
        data["userId"] = conn.user_id
    if conn.app_id is not None:
        data["appId"] = conn.app_id
    if conn.email:
        data["externalAccountEmail"] = conn.email
    data["status"] = conn.status
    if conn.status == "ERROR" and conn.error_reason:
        data["errorReason"] = conn.error_reason
    data["syncConfig"] = copy_json(conn.sync_config) if copy else conn.sync_config
    return data


def schedule_json(schedule) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "externalId": schedule.external_id,
        "appId": schedule.app_id,
        "name": schedule.name,
        "status": schedule.status,
        "timeZone": schedule.time_zone,
        "businessTimeZoneEnabled": True,
        "defaultTitle": schedule.name,
        "defaultCapacity": schedule.default_capacity,
        "createdDate": schedule.created_date,
    }


def site_json(site) -> dict[str, Any]:
    return {
        "id": site.id,
        "name": site.name,
        "displayName": site.name,
        "createdDate": site.created_date,
        "updatedDate": site.created_date,
        "published": True,
        "premium": site.premium,
        "viewUrl": f"https://example.wixsite.com/{site.id[:8]}",
        "editUrl": f"https://manage.wix.com/editor/{site.id}",
        "ownerAccountId": site.account_id,
        "contributorAccountIds": [],
        "editorType": "EDITOR",
        "blocked": False,
        "namespace": "WIX",
        "domainConnected": False,
    }


def account_calendars(conn) -> list[dict[str, str]]:
    """Return the calendars of the connection's external account (List Calendars)."""
    return conn.calendars if conn.calendars is not None else calendars_for(conn.id)


def calendars_for(conn_id: str) -> list[dict[str, str]]:
    """Return the external account's calendars: Primary and two more, with stable ids."""
    return [{"id": _calendar_id(conn_id, name), "name": name} for name in CALENDAR_NAMES]


def _calendar_id(conn_id: str, name: str) -> str:
    # Provider calendar ids are opaque lowercase alphanumerics (docs/wix-contract.md §0 "Calendar
    # IDs").
    number = int.from_bytes(hashlib.blake2b(f"{conn_id}/{name}".encode()).digest()[:16])
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rem = divmod(number, 36)
        out += digits[rem]
    return out[:25]


def events_for(conn, schedule, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Return the connection's events overlapping [start, end), with all PI fields.

    Each day draws from an RNG seeded by (connection id, date): about five timed events a
    week and an occasional all-day one, identical on every call.
    """
    imported = conn.sync_config.get("listEventFromCalendars", {})
    if "calendars" in imported:
        by_id = {c["id"]: c.get("name", "") for c in account_calendars(conn)}
        names = [by_id.get(c["id"], "Calendar") for c in imported["calendars"]["calendars"]]
        if not names:
            return []
    else:
        names = ["Primary"]
    events = []
    day: date = start.date() - timedelta(days=1)
    while day <= end.date():
        rng = random.Random(f"{conn.id}/{day.toordinal()}")
        midnight = datetime(day.year, day.month, day.day, tzinfo=start.tzinfo)
        drawn = []
        if rng.random() < 0.08:
            drawn.append((midnight, midnight + timedelta(days=1), True, rng.choice(ALL_DAY_TITLES)))
        roll = rng.random()
        for _ in range(0 if roll < 0.45 else 1 if roll < 0.85 else 2):
            begin = midnight + timedelta(hours=rng.randrange(7, 19), minutes=rng.choice((0, 30)))
            length = timedelta(minutes=rng.choice((30, 45, 60, 90, 120)))
            drawn.append((begin, begin + length, False, rng.choice(TIMED_TITLES)))
        for begin, finish, all_day, title in drawn:
            if begin < end and finish > start:
                events.append(
                    {
                        "scheduleId": conn.schedule_id,
                        "calendarType": conn.calendar_type,
                        "calendarName": rng.choice(names),
                        "title": title,
                        "start": rfc3339(begin),
                        "end": rfc3339(finish),
                        "allDay": all_day,
                        "scheduleOwnerId": schedule.external_id,
                        "scheduleOwnerName": schedule.name,
                    }
                )
        day += timedelta(days=1)
    return events


def copy_json(value: Any) -> Any:
    """A deep copy of JSON data, keeping key order."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value
