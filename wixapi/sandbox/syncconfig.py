"""Connection `syncConfig` objects: defaults, parsing and provider capability checks.

Shapes follow docs/wix-contract.md §1 "Connection": each sub-object is `enabled` plus exactly one of
its one-of keys (`primaryCalendar` | `calendars.calendars[]` for import, `primaryCalendar` |
`dedicatedCalendar` for export)."""

from __future__ import annotations

from typing import Any

IMPORT_ONE_OF = ("primaryCalendar", "calendars")
EXPORT_ONE_OF = ("primaryCalendar", "dedicatedCalendar")

# What each capability value lets an *enabled* sub-object use (docs/wix-contract.md §1 enums).
# SPECIFIC_CALENDAR export has no config field of its own (docs/wix-contract.md §1), so only the
# primary fits.
IMPORT_ALLOWED = {
    "PRIMARY_CALENDAR_ONLY": {"primaryCalendar"},
    "SPECIFIC_CALENDARS": {"primaryCalendar", "calendars"},
}
EXPORT_ALLOWED = {
    "PRIMARY_CALENDAR_ONLY": {"primaryCalendar"},
    "SPECIFIC_CALENDAR": {"primaryCalendar"},
    "DEDICATED_CALENDAR": {"dedicatedCalendar"},
}

# [U] chosen: Update Sync Config checks the provider's features only for a sub-object that
# changes, so a connection keeps (and may be sent back) a config Wix made beyond them, as the
# docs' List Connections example has: Google exporting to its primary calendar while the
# provider says DEDICATED_CALENDAR. A direction the provider says NOT_SUPPORTED is refused
# whenever it is sent enabled. Set to False to check every enabled sub-object.
CHECK_ONLY_CHANGES = True
# [U] chosen: Update Sync Config replaces the whole syncConfig; a sub-object left out of
# the request becomes disabled. Set to "merge" to keep left-out sub-objects unchanged.
UPDATE_MODE = "replace"


def import_config(mode: str | None, calendars: list[dict[str, str]]) -> dict[str, Any]:
    """Return `listEventFromCalendars` for mode PRIMARY, CALENDARS (the given list) or None."""
    if mode == "PRIMARY":
        return {"enabled": True, "primaryCalendar": {}}
    if mode == "CALENDARS":
        return {"enabled": True, "calendars": {"calendars": [dict(c) for c in calendars]}}
    if mode is None:
        return {"enabled": False, "primaryCalendar": {}}
    raise ValueError(f"import_mode must be PRIMARY, CALENDARS or None, not {mode!r}")


def export_config(mode: str | None, sync_to_calendar: str) -> dict[str, Any]:
    """Return `syncToCalendar` for mode PRIMARY, DEDICATED or None (disabled)."""
    if mode == "PRIMARY":
        return {"enabled": True, "primaryCalendar": {}}
    if mode == "DEDICATED":
        return {"enabled": True, "dedicatedCalendar": {}}
    if mode is None:
        key = "dedicatedCalendar" if sync_to_calendar == "DEDICATED_CALENDAR" else "primaryCalendar"
        return {"enabled": False, key: {}}
    raise ValueError(f"export_mode must be PRIMARY, DEDICATED or None, not {mode!r}")


def default_modes(list_event_from_calendars: str, sync_to_calendar: str) -> tuple[str | None, ...]:
    """Return (import_mode, export_mode) a fresh connection gets from its provider.

    [U] chosen: a new connection imports from the primary calendar and exports wherever the
    provider can (dedicated or primary calendar), or not at all.
    """
    import_mode = "PRIMARY" if list_event_from_calendars in IMPORT_ALLOWED else None
    export_mode = {"DEDICATED_CALENDAR": "DEDICATED", "PRIMARY_CALENDAR_ONLY": "PRIMARY"}.get(
        sync_to_calendar, "PRIMARY" if sync_to_calendar == "SPECIFIC_CALENDAR" else None
    )
    return import_mode, export_mode


def unsupported_reason(
    config: dict[str, Any], provider: Any, *, current: dict[str, Any] | None = None
) -> str | None:
    """Return why the provider can't honour `config`, or None when it can.

    With `current` (the connection's config), a sub-object equal to its current one is not
    checked (see CHECK_ONLY_CHANGES)."""
    imp, exp = config["listEventFromCalendars"], config["syncToCalendar"]
    if CHECK_ONLY_CHANGES and current is not None:
        if provider.list_event_from_calendars != "NOT_SUPPORTED" and _same_target(
            imp, current.get("listEventFromCalendars")
        ):
            imp = {}
        if provider.sync_to_calendar != "NOT_SUPPORTED" and _same_target(
            exp, current.get("syncToCalendar")
        ):
            exp = {}
    if imp.get("enabled"):
        allowed = IMPORT_ALLOWED.get(provider.list_event_from_calendars, set())
        if _one_of(imp, IMPORT_ONE_OF) not in allowed:
            return f"Provider can't import with listEventFromCalendars={imp}"
    if exp.get("enabled"):
        allowed = EXPORT_ALLOWED.get(provider.sync_to_calendar, set())
        if _one_of(exp, EXPORT_ONE_OF) not in allowed:
            return f"Provider can't export with syncToCalendar={exp}"
    return None


def parse(body_config: Any, current: dict[str, Any], sync_to_calendar: str):
    """Validate a request's `syncConfig`; return (config, field_violations)."""
    if not isinstance(body_config, dict):
        return None, [_violation("syncConfig", "must not be empty", "REQUIRED_FIELD")]
    violations: list[dict[str, Any]] = []
    result = {}
    for name, one_of, field_default in (
        ("listEventFromCalendars", IMPORT_ONE_OF, import_config(None, [])),
        ("syncToCalendar", EXPORT_ONE_OF, export_config(None, sync_to_calendar)),
    ):
        sub = body_config.get(name)
        path = f"syncConfig.{name}"
        if sub is None:
            result[name] = (
                current.get(name, field_default) if UPDATE_MODE == "merge" else field_default
            )
            continue
        if not isinstance(sub, dict):
            violations.append(_violation(path, "must be an object", "INVALID_TYPE"))
            continue
        present = [k for k in one_of if k in sub]
        if len(present) > 1:
            violations.append(_violation(path, f"only one of {', '.join(one_of)}", "ONE_OF"))
            continue
        enabled = sub.get("enabled", False)
        if not isinstance(enabled, bool):
            violations.append(_violation(f"{path}.enabled", "must be a boolean", "INVALID_TYPE"))
            continue
        if not present:
            if enabled:
                violations.append(_violation(path, f"one of {', '.join(one_of)}", "ONE_OF"))
                continue
            # A disabled sub-object may name no target; it is kept as sent, as Wix echoes it.
            result[name] = {"enabled": False}
            continue
        key = present[0]
        value = sub[key]
        if key == "calendars":
            items = value.get("calendars") if isinstance(value, dict) else None
            if not isinstance(items, list) or not all(
                isinstance(c, dict) and isinstance(c.get("id"), str) for c in items
            ):
                violations.append(
                    _violation(f"{path}.calendars.calendars", "list of {id}", "INVALID_TYPE")
                )
                continue
            value = {"calendars": [{"id": c["id"]} for c in items]}
        else:
            value = {}
        result[name] = {"enabled": enabled, key: value}
    return (None if violations else result), violations


def _same_target(sub: dict[str, Any], current: Any) -> bool:
    """Whether `sub` asks for what `current` has: the same enabled flag, one-of key and
    calendar ids (names are Wix's to fill in)."""
    if not isinstance(current, dict):
        return False

    def target(value: dict[str, Any]) -> tuple:
        calendars = value.get("calendars")
        ids = (
            tuple(c.get("id") for c in calendars.get("calendars", []))
            if isinstance(calendars, dict)
            else None
        )
        keys = tuple(k for k in (*IMPORT_ONE_OF, *EXPORT_ONE_OF) if k in value)
        return bool(value.get("enabled")), keys, ids

    return target(sub) == target(current)


def _one_of(sub: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    return next((k for k in keys if k in sub), None)


def _violation(field: str, description: str, rule: str) -> dict[str, Any]:
    return {"field": field, "description": description, "violatedRule": rule, "data": {}}
