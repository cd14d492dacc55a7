"""The JSON a webhook carries: the Standard Webhooks envelope, versioned.

    {"type": "connection.broken", "timestamp": "2026-12-01T15:30:00.000Z",
     "version": "2026-01", "id": "msg_…", "data": {…}}

`id` is also the `webhook-id` header: the same on every retry and replay of one event, so a
receiver drops duplicates by it. The text is rendered once and stored (`Delivery.body`): what
was signed is what every retry and replay sends, byte for byte. No secret is ever in it.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from common.events import EventType

VERSION = "2026-01"
TEST_MESSAGE = "A test event from the Calendar Connections Portal: this endpoint receives webhooks."


def new_msg_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def render(event_type: EventType | str, *, msg_id: str, occurred_at: datetime, data: dict) -> str:
    """Return the envelope's JSON text (compact, ASCII) for an event of `event_type`."""
    document: dict[str, Any] = {
        "type": str(event_type),
        "timestamp": iso(occurred_at),
        "version": VERSION,
        "id": msg_id,
        "data": data,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True)


def iso(moment: datetime) -> str:
    """An aware datetime as ISO 8601 in UTC with milliseconds and a Z."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def test_data(*, endpoint_id: int, description: str) -> dict[str, Any]:
    """The `data` of a `webhook.test` event."""
    return {
        "endpoint": {"id": endpoint_id, "description": description},
        "message": TEST_MESSAGE,
    }
