"""The webhook endpoints' API shapes. No serializer here has a field for a secret: the one
response that carries one (create, rotate-secret) adds it by hand, once."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers

from common.events import SUBSCRIBABLE
from common.ids import MAX_ID

from ..models import Delivery, DeliveryAttempt, DisabledReason, WebhookEndpoint
from ..webhooks.transport import AttemptError


class TenantIdsField(serializers.ListField):
    """The endpoint's tenants by portal id; none: every tenant its owner can see.

    Ids, not a related field: the service checks them against the owner's tenants and answers
    a foreign id exactly as a missing one (a related field's choices would list tenants).
    """

    child = serializers.IntegerField(min_value=1, max_value=MAX_ID)

    def get_attribute(self, instance):
        return sorted(t.pk for t in instance.tenants.all())


class WebhookEndpointSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    url = serializers.CharField(
        max_length=2000, help_text="https:// to a public address (WEBHOOK_ALLOW_HOSTS aside)."
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        help_text=f"The event types it receives, of {', '.join(SUBSCRIBABLE)}; none: every type.",
    )
    tenants = TenantIdsField(required=False)
    is_enabled = serializers.BooleanField(
        required=False, help_text="Turning it off cancels its pending deliveries."
    )
    # Blank while it is on: the choices say so, or the schema would not allow "".
    disabled_reason = serializers.ChoiceField(
        choices=[("", "Not turned off"), *DisabledReason.choices], read_only=True
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "owner",
            "url",
            "description",
            "event_types",
            "tenants",
            "is_enabled",
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "created_at",
        ]
        read_only_fields = ["disabled_at", "failing_since", "created_at"]


class CreatedWebhookEndpointSerializer(WebhookEndpointSerializer):
    """The create response: the endpoint and its signing secret, shown this once."""

    secret = serializers.CharField(
        read_only=True, help_text="The `whsec_` signing secret: shown in this response only."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class RotatedSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The new `whsec_` secret: shown this once.")
    previous_valid_until = serializers.DateTimeField(
        help_text="Until when the previous secret keeps signing alongside it."
    )


class TestSentSerializer(serializers.Serializer):
    delivery_id = serializers.IntegerField()
    webhook_id = serializers.CharField(help_text="The `webhook-id` header it is sent with.")


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    error = serializers.ChoiceField(
        choices=[("", "None: the receiver answered"), *AttemptError.CHOICES],
        read_only=True,
        help_text="Why no answer came (a timeout, a refused connection...); blank if one did.",
    )

    class Meta:
        model = DeliveryAttempt
        fields = ["number", "started_at", "duration_ms", "status_code", "error", "retry_at"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    """A delivery and its attempts: never its body's signature or the endpoint's secret."""

    webhook_id = serializers.CharField(source="msg_id", read_only=True)
    attempt_log = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "webhook_id",
            "event_type",
            "tenant",
            "state",
            "attempts",
            "last_status",
            "next_attempt_at",
            "is_test",
            "replay_of",
            "created_at",
            "finished_at",
            "attempt_log",
        ]
        read_only_fields = fields


class ReplaySerializer(serializers.Serializer):
    """Exactly one of: a delivery of this endpoint, or every failed one since a time."""

    delivery_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    failed_since = serializers.DateTimeField(required=False)

    def validate_failed_since(self, value):
        if value > timezone.now():
            raise serializers.ValidationError("Choose a time in the past.")
        return value

    def validate(self, attrs):
        if len(attrs) != 1:
            raise serializers.ValidationError(
                {"non_field_errors": ["Send either delivery_id or failed_since."]}
            )
        return attrs


class ReplayQueuedSerializer(serializers.Serializer):
    queued = serializers.IntegerField(help_text="How many deliveries were queued again.")
