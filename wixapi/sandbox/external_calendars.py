"""External Calendar v2 endpoints (docs/wix-contract.md §1). Handlers take (sandbox, request,
caller, ...)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.wrappers import Request, Response

from . import shapes, syncconfig
from .queries import decode_cursor, encode_cursor, parse_limit, read_body
from .responses import (
    NOT_FOUND,
    json_response,
    minimal_error,
    required,
    validation_error,
    violation,
    wix_error,
)
from .state import WRONG_PASSWORD_PREFIX, ConsentRequest

EVENTS_DEFAULT_LIMIT = 50  # [U] chosen: docs/wix-contract.md §1.9 leaves the default page size open
EVENTS_MAX_LIMIT = 1000  # docs/wix-contract.md §1.9
EVENTS_MAX_IDS = 100  # docs/wix-contract.md §1.9: scheduleIds / userIds max 100
# [U] chosen: docs/wix-contract.md §6.4 leaves the max span open
EVENTS_MAX_WINDOW = timedelta(days=366)
# Chosen: a failing provider without partialFailure=true fails the whole call (docs/wix-contract.md
# §1.3) with 503 and a minimal body: the portal may retry, and 5xx bodies may be empty
# (docs/wix-contract.md §3).
PROVIDER_FAILURE_STATUS = 503
# [U] chosen: with partialFailure=true, `failedProviderIds` is sent even when empty.
SEND_EMPTY_FAILED_PROVIDER_IDS = True
NOT_SUPPORTED = "NOT_SUPPORTED_BY_PROVIDER"
_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", re.IGNORECASE)


# helpers ----------------------------------------------------------------------------------
def _connection(caller, connection_id: str):
    conn = caller.site.connections.get(connection_id)
    if conn is None:
        # Another site's connection id is unknown here too (site isolation).
        raise wix_error(404, NOT_FOUND, f"Connection {connection_id} not found")
    return conn


def _provider(caller, provider_id: str):
    provider = caller.site.provider_records.get(provider_id)
    if provider is None:
        raise wix_error(404, NOT_FOUND, f"Provider {provider_id} not found")
    return provider


def _schedule(caller, schedule_id: str):
    schedule = caller.site.schedules.get(schedule_id)
    if schedule is None:
        raise wix_error(404, NOT_FOUND, f"Schedule {schedule_id} not found")
    return schedule


def _require(body: dict[str, Any], *fields: str) -> None:
    missing = [required(f) for f in fields if not isinstance(body.get(f), str) or not body[f]]
    if missing:
        raise validation_error(missing)


def _bool_arg(request: Request, name: str, violations: list) -> bool | None:
    value = request.args.get(name)
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        violations.append(violation(name, "must be true or false"))
        return None
    return value.lower() == "true"


def _time_arg(value: str | None, name: str, violations: list) -> datetime | None:
    if not value:
        violations.append(required(name))
        return None
    if not _RFC3339.match(value):
        violations.append(violation(name, "must be an RFC 3339 date-time", "INVALID_FORMAT"))
        return None
    return datetime.fromisoformat(value.upper().replace("Z", "+00:00")).astimezone(UTC)


def _not_premium(caller) -> None:
    if not caller.site.premium:
        raise wix_error(
            403, "PREMIUM_FEATURE_NOT_ENABLED", "The site's plan doesn't include external calendars"
        )


def _split_failing(sb, caller, conns: list, partial: bool) -> tuple[list, list[str]]:
    """Drop connections of failing providers (docs/wix-contract.md §1.3); fail the call when that's
    not allowed."""
    faults = sb.faults_if_any(caller.site.id)
    failing = faults.failing_providers if faults else set()
    failed = sorted({c.provider_id for c in conns if c.provider_id in failing})
    if not failed:
        return conns, []
    kept = [c for c in conns if c.provider_id not in failing]
    if not partial or not kept:
        raise minimal_error(PROVIDER_FAILURE_STATUS, "Failed to reach the calendar provider")
    return kept, failed


# endpoints --------------------------------------------------------------------------------
def list_providers(sb, request: Request, caller) -> Response:
    with sb.lock:
        providers = [shapes.provider_json(p) for p in caller.site.provider_records.values()]
    return json_response({"providers": providers})


def get_connection(sb, request: Request, caller, connection_id: str) -> Response:
    with sb.lock:
        return json_response(
            {"connection": shapes.connection_json(_connection(caller, connection_id))}
        )


def list_connections(sb, request: Request, caller) -> Response:
    violations: list = []
    partial = bool(_bool_arg(request, "partialFailure", violations))
    if violations:
        raise validation_error(violations)
    schedule_ids = set(request.args.getlist("scheduleIds"))
    with sb.lock:
        # [U] chosen: DISCONNECTED connections are listed (docs/wix-contract.md §1.3, §6.5).
        conns = [
            c
            for c in caller.site.connections.values()
            if not schedule_ids or c.schedule_id in schedule_ids
        ]
        conns, failed = _split_failing(sb, caller, conns, partial)
        data: dict[str, Any] = {
            "connections": [shapes.connection_json(c, copy=False) for c in conns]
        }
    if partial and (failed or SEND_EMPTY_FAILED_PROVIDER_IDS):
        data["failedProviderIds"] = failed
    return json_response(data)


def connect_by_oauth(sb, request: Request, caller) -> Response:
    body = read_body(request)
    _require(body, "scheduleId", "providerId", "redirectUrl")
    if not re.match(r"^https?://", body["redirectUrl"]):
        raise validation_error([violation("redirectUrl", "must be an http(s) URL")])
    with sb.lock:
        _schedule(caller, body["scheduleId"])
        provider = _provider(caller, body["providerId"])
        if "OAUTH" not in provider.connect_methods:
            raise wix_error(428, NOT_SUPPORTED, f"{provider.name} doesn't connect by OAuth")
        consent = ConsentRequest(
            id=uuid.uuid4().hex,
            site_id=caller.site.id,
            schedule_id=body["scheduleId"],
            provider_id=provider.id,
            redirect_url=body["redirectUrl"],
            app_id=caller.app_id,
        )
        sb.consents[consent.id] = consent
    # The consent page lives on this sandbox, reached through the Host the client used.
    return json_response({"oauthUrl": f"{request.host_url}_sandbox/oauth/consent/{consent.id}"})


def connect_by_credentials(sb, request: Request, caller) -> Response:
    body = read_body(request)
    _require(body, "scheduleId", "providerId", "email", "password")
    with sb.lock:
        _schedule(caller, body["scheduleId"])
        provider = _provider(caller, body["providerId"])
        if "CREDENTIALS" not in provider.connect_methods:
            raise wix_error(428, NOT_SUPPORTED, f"{provider.name} doesn't connect by credentials")
        _not_premium(caller)
        # The password is checked and dropped: only the email is kept.
        if body["password"].startswith(WRONG_PASSWORD_PREFIX):
            raise wix_error(401, "BAD_CREDENTIALS", "The email or password is wrong")
        conn_id = sb.connect(
            caller.site.id,
            body["scheduleId"],
            provider.id,
            email=body["email"],
            app_id=caller.app_id,
        )
        return json_response({"connection": sb.connection_json(caller.site.id, conn_id)})


def list_calendars(sb, request: Request, caller, connection_id: str) -> Response:
    with sb.lock:
        conn = _connection(caller, connection_id)
        _not_premium(caller)
        if conn.status == "DISCONNECTED":
            raise wix_error(428, "CONNECTION_NOT_CONNECTED", "The connection is disconnected")
        provider = _provider(caller, conn.provider_id)
        if provider.list_event_from_calendars != "SPECIFIC_CALENDARS":
            raise wix_error(428, NOT_SUPPORTED, f"{provider.name} has no calendars to choose")
        _split_failing(sb, caller, [conn], partial=False)
    return json_response({"calendars": shapes.account_calendars(conn)})


def update_sync_config(sb, request: Request, caller, connection_id: str) -> Response:
    body = read_body(request)
    with sb.lock:
        conn = _connection(caller, connection_id)
        provider = _provider(caller, conn.provider_id)
        config, violations = syncconfig.parse(
            body.get("syncConfig"), conn.sync_config, provider.sync_to_calendar
        )
        if violations:
            raise validation_error(violations)
        imported = config["listEventFromCalendars"]
        if "calendars" in imported:
            known = {c["id"]: c for c in shapes.account_calendars(conn)}
            chosen = imported["calendars"]["calendars"]
            unknown = [c["id"] for c in chosen if c["id"] not in known]
            if unknown:
                field = "syncConfig.listEventFromCalendars.calendars.calendars"
                raise validation_error([violation(field, f"unknown calendar ids {unknown}")])
            imported["calendars"]["calendars"] = [dict(known[c["id"]]) for c in chosen]
        if conn.status == "DISCONNECTED":
            raise wix_error(428, "CONNECTION_NOT_CONNECTED", "The connection is disconnected")
        if not provider.update_sync_config:
            raise wix_error(428, NOT_SUPPORTED, f"{provider.name} doesn't allow sync changes")
        reason = syncconfig.unsupported_reason(config, provider, current=conn.sync_config)
        if reason:
            raise wix_error(428, NOT_SUPPORTED, reason)
        conn.sync_config = config
        return json_response({"connection": shapes.connection_json(conn)})


def disconnect(sb, request: Request, caller, connection_id: str) -> Response:
    with sb.lock:
        conn = _connection(caller, connection_id)
        if conn.status == "DISCONNECTED":
            raise wix_error(
                428, "CONNECTION_ALREADY_DISCONNECTED", "The connection is already disconnected"
            )
        conn.status, conn.error_reason = "DISCONNECTED", None
        return json_response({"connection": shapes.connection_json(conn)})


def list_events(sb, request: Request, caller) -> Response:
    state = _events_query(request)
    limit = parse_limit(
        request.args.get("cursorPaging.limit", state["l"]),
        "cursorPaging.limit",
        EVENTS_DEFAULT_LIMIT,
        EVENTS_MAX_LIMIT,
    )
    state["l"] = limit
    start = datetime.fromisoformat(state["f"])
    end = datetime.fromisoformat(state["t"])
    with sb.lock:
        site = caller.site
        conns = [
            c
            for c in site.connections.values()
            if c.status != "DISCONNECTED"
            and c.sync_config.get("listEventFromCalendars", {}).get("enabled")
            and c.schedule_id in site.schedules
            and (not state["s"] or c.schedule_id in state["s"])
            and (not state["u"] or c.user_id in state["u"])
        ]
        conns, failed = _split_failing(sb, caller, conns, state["pf"])
        work = [(c, site.schedules[c.schedule_id]) for c in conns]
    events = [e for c, s in work for e in shapes.events_for(c, s, start, end)]
    if state["a"] is not None:
        events = [e for e in events if e["allDay"] is state["a"]]
    events.sort(key=lambda e: (e["start"], e["end"], e["scheduleId"], e["title"]))
    offset = state["o"]
    page = events[offset : offset + limit]
    if "OWN_PI" not in state["p"]:
        for event in page:
            for key in ("calendarName", "title", "scheduleOwnerName"):
                del event[key]
    has_next = offset + limit < len(events)
    cursors = {"next": encode_cursor({**state, "o": offset + limit})} if has_next else {}
    data: dict[str, Any] = {
        "events": page,
        "pagingMetadata": {"count": len(page), "cursors": cursors, "hasNext": has_next},
    }
    if state["pf"] and (failed or SEND_EMPTY_FAILED_PROVIDER_IDS):
        data["failedProviderIds"] = failed
    return json_response(data)


def _events_query(request: Request) -> dict[str, Any]:
    """Return the query state from the parameters, or from the cursor when one is sent.

    [U] chosen (docs/wix-contract.md §1.9): the cursor carries the filters; filters repeated next to
    it are ignored, except `cursorPaging.limit`."""
    cursor = request.args.get("cursorPaging.cursor")
    if cursor:
        return decode_cursor(cursor, "cursorPaging.cursor")
    args = request.args
    violations: list = []
    start = _time_arg(args.get("from"), "from", violations)
    end = _time_arg(args.get("to"), "to", violations)
    if start and end and start >= end:
        violations.append(violation("from", "must be before to"))
    elif start and end and end - start > EVENTS_MAX_WINDOW:
        violations.append(violation("to", f"window longer than {EVENTS_MAX_WINDOW.days} days"))
    schedule_ids, user_ids = args.getlist("scheduleIds"), args.getlist("userIds")
    for name, ids in (("scheduleIds", schedule_ids), ("userIds", user_ids)):
        if len(ids) > EVENTS_MAX_IDS:
            violations.append(violation(name, f"at most {EVENTS_MAX_IDS} ids"))
    fieldsets = args.getlist("fieldsets")
    if any(f not in ("NO_PI", "OWN_PI") for f in fieldsets):
        violations.append(violation("fieldsets", "must be NO_PI or OWN_PI"))
    all_day = _bool_arg(request, "allDay", violations)
    partial = bool(_bool_arg(request, "partialFailure", violations))
    if violations:
        raise validation_error(violations)
    return {
        "f": start.isoformat(),
        "t": end.isoformat(),
        "s": schedule_ids,
        "u": user_ids,
        "a": all_day,
        "p": fieldsets,
        "pf": partial,
        "o": 0,
        "l": None,
    }
