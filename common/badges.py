"""Coloured status badges for admin lists and pages; one palette for the whole portal."""

from __future__ import annotations

from django.utils.html import format_html

# status value -> (label, colour class); unknown values fall back to grey.
TONES = {
    # Connection status (Wix)
    "SYNCED": "good",
    "CONNECTED": "good",
    "SYNC_IN_PROGRESS": "busy",
    "DISCONNECTED": "warn",
    "ERROR": "bad",
    "UNDEFINED": "muted",
    # Refresh outcome, credentials status, audit outcome
    "ok": "good",
    "partial": "warn",
    "failed": "bad",
    "running": "busy",
    "queued": "busy",
    "unverified": "muted",
    "denied": "bad",
    "pending": "busy",
    "connected": "good",
}


def badge(value: str, label: str | None = None, *, count: int | None = None) -> str:
    """Return an HTML badge for a status value (escaped), with an optional count."""
    tone = TONES.get(value, "muted")
    text = label or value.replace("_", " ").capitalize()
    if count is not None:
        return format_html(
            '<span class="portal-badge portal-{}" title="{}">{} {}</span>', tone, text, count, text
        )
    return format_html('<span class="portal-badge portal-{}">{}</span>', tone, text)
