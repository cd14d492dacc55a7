"""The event types the portal announces, by webhook and email: one vocabulary for every app.

Below every app that emits or delivers them (`connections` opens issues and emits the
connection and tenant types; `alerts` delivers them), so it names no model. The values are
the `type` of the Standard Webhooks payload and what an endpoint subscribes to.
"""

from __future__ import annotations

from django.db import models


class EventType(models.TextChoices):
    CONNECTION_BROKEN = "connection.broken", "Connection broken"
    CONNECTION_RECOVERED = "connection.recovered", "Connection recovered"
    CONNECTION_DISCONNECTED = "connection.disconnected", "Connection disconnected"
    CONNECTION_REMOVED = "connection.removed", "Connection removed from Wix"
    CONNECTION_STUCK = "connection.stuck", "Connection stuck"
    TENANT_REFRESH_FAILING = "tenant.refresh_failing", "Tenant refresh failing"
    TENANT_RECOVERED = "tenant.recovered", "Tenant recovered"
    TENANT_CREDENTIALS_INVALID = "tenant.credentials_invalid", "Tenant credentials invalid"
    TENANT_STALE = "tenant.stale", "Tenant stale"
    INCIDENT_OPENED = "incident.opened", "Incident opened"
    INCIDENT_RESOLVED = "incident.resolved", "Incident resolved"
    ISSUE_MUTED = "issue.muted", "Issue muted"
    # Sent on request ("send a test event") to one endpoint, whatever it subscribes to.
    WEBHOOK_TEST = "webhook.test", "Test event"


# What an endpoint may subscribe to: every type but the test event, which always reaches it.
SUBSCRIBABLE = tuple(t for t in EventType if t != EventType.WEBHOOK_TEST)
