"""What the portal has sent, or would have sent: the outbox's emails, and signed webhooks
with their endpoints, secrets, deliveries and attempts."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from common.events import EventType
from tenants.fields import EncryptedTextField
from tenants.models import Tenant

from .webhooks.transport import AttemptError


class OutboxMessage(models.Model):
    """An email kept instead of sent: the mail backend when EMAIL_URL is unset (the demo,
    a development checkout), shown in the admin. Nothing leaves the machine."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    from_email = models.CharField(max_length=320)
    to = models.JSONField(default=list)
    subject = models.CharField(max_length=998)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "outbox email"
        verbose_name_plural = "outbox (emails kept, not sent)"

    def __str__(self) -> str:
        return f"{self.subject} → {', '.join(self.to)}"


# --- Webhooks ------------------------------------------------------------------------------


class DisabledReason(models.TextChoices):
    MANUAL = "manual", "Turned off by a person"
    GONE = "gone", "The receiver answered 410 Gone"
    FAILING = "failing", "Only failures for days"


class WebhookEndpointQuerySet(models.QuerySet):
    def owned_by(self, user) -> WebhookEndpointQuerySet:
        """The endpoints `user` manages: their own; a superuser's, every one."""
        if user is not None and user.is_active and user.is_superuser:
            return self
        if user is None or not user.is_active or not user.is_staff:
            return self.none()
        return self.filter(owner=user)


class WebhookEndpoint(models.Model):
    """A receiver of signed webhooks (Standard Webhooks): where, what, about which tenants.

    Its owner's tenant access bounds what it receives: no tenants listed means every tenant
    the owner can see, and a listed tenant the owner can no longer see receives nothing.
    No event types listed means every type.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.CharField("URL", max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(
        default=list, blank=True, help_text="Event types it receives; none listed: every type."
    )
    tenants = models.ManyToManyField(
        Tenant,
        blank=True,
        related_name="+",
        help_text="Tenants it hears about; none listed: every tenant its owner can see.",
    )
    is_enabled = models.BooleanField("enabled", default=True)
    disabled_reason = models.CharField(max_length=16, choices=DisabledReason, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # The first failed attempt since the last success: five days of failures disable it.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return self.description or self.host

    @property
    def host(self) -> str:
        """The URL's host, which logs and emails name (the path may hold the receiver's token)."""
        return urlsplit(self.url).hostname or "?"

    def receives(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookSecretQuerySet(models.QuerySet):
    def valid_at(self, moment: datetime) -> WebhookSecretQuerySet:
        """Secrets that sign at `moment`: the current one, and a rotated one not yet expired."""
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=moment))


class WebhookSecret(models.Model):
    """A `whsec_` signing secret of an endpoint, encrypted at rest, shown once when made.

    `expires_at` is null for the current secret; rotating sets the old one's to 24 hours on,
    and until then both sign every attempt.
    """

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="secrets")
    secret = EncryptedTextField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookSecretQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["endpoint", "expires_at"], name="webhooksecret_valid")]

    def __str__(self) -> str:
        return f"Secret of {self.endpoint} made {self.created_at:%Y-%m-%d %H:%M}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class DeliveryQuerySet(models.QuerySet):
    def due(self, now: datetime) -> DeliveryQuerySet:
        """Pending deliveries of enabled endpoints whose attempt is due and not leased."""
        return self.filter(
            Q(leased_until__isnull=True) | Q(leased_until__lte=now),
            state=DeliveryState.PENDING,
            next_attempt_at__lte=now,
            endpoint__is_enabled=True,
        )


class Delivery(models.Model):
    """One event for one endpoint, and how sending it went: a row, so no restart loses it.

    `body` is the exact JSON text signed; every retry and replay sends it again with the same
    `msg_id` (the `webhook-id`). A worker sends an attempt only while it holds the lease
    (`lease_token`, until `leased_until`), and writes its result only if it still does.
    """

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    # Whose event it is (none for a test): the log is scoped by it.
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    msg_id = models.CharField("webhook-id", max_length=64, db_index=True)
    event_type = models.CharField(max_length=64, choices=EventType)
    body = models.TextField()
    state = models.CharField(max_length=16, choices=DeliveryState, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays"
    )
    is_test = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="delivery_due",
            ),
            models.Index(
                fields=["endpoint", "state", "created_at"], name="delivery_endpoint_state"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.msg_id} ({self.get_state_display()})"


class DeliveryAttempt(models.Model):
    """One try at sending a delivery: when, how long, the answer (its first 1 KB) or the error."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=32, choices=AttemptError.CHOICES, blank=True)
    response_excerpt = models.TextField(blank=True)
    # When the next attempt is due, if there is one.
    retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["delivery", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="deliveryattempt_unique")
        ]

    def __str__(self) -> str:
        result = self.status_code or self.get_error_display()
        return f"Attempt {self.number} of {self.delivery_id}: {result}"
