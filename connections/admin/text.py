"""How the admin shows Wix's JSON and a connection's history."""

from __future__ import annotations

import json

from django.utils.html import format_html

from wixapi import types as wix

from ..models import ChangeKind, ConnectionChange, export_text, import_text


def describe_sync_json(value) -> str:
    """A syncConfig as Wix sent it, in words: "import off; export on, to ..."."""
    if not isinstance(value, dict):
        return "—"
    config = wix.SyncConfig.from_json(value)
    imp, exp = config.list_event_from_calendars, config.sync_to_calendar
    imported = import_text(imp.enabled, imp.mode, [c.name or c.id for c in imp.calendars])
    return f"import {imported}; export {export_text(exp.enabled, exp.mode)}"


def describe_change(change: ConnectionChange) -> str:
    """What a history entry says: "SYNCED → ERROR", "as SYNCED", "was ERROR"."""
    if change.kind == ChangeKind.CHANGED:
        if change.field == "sync_config":
            old, new = describe_sync_json(change.old_value), describe_sync_json(change.new_value)
        else:
            old, new = change.old_value or "—", change.new_value or "—"
        return f"{old} → {new}"
    if change.kind == ChangeKind.REMOVED:
        return f"was {change.old_value or '—'}"
    return f"as {change.new_value or '—'}"


def pretty_json(value) -> str:
    return format_html(
        '<pre class="portal-json">{}</pre>', json.dumps(value, indent=2, sort_keys=True)
    )
