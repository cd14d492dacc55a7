from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.views.decorators.debug import sensitive_variables
from rest_framework import exceptions, serializers

from tenants import access
from tenants.models import AuditEvent, Tenant, WixApp
from tenants.services import tenants as services

WAY_IN_REFUSED = (
    "Only agency admins change how a tenant reaches Wix (its site, Wix app, app instance or "
    "API key)."
)


class TenantSerializer(serializers.ModelSerializer):
    """A tenant; its API key is write-only and shown back only as `api_key_set`.

    How the tenant reaches Wix (`site_id`, `wix_app`, `instance_id`, `api_key`) is set by
    agency admins only (`tenants.access.can_change_way_in`); others see the site and the
    auth method, never the app instance, and cannot send those fields.
    """

    api_key = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=True,
        style={"input_type": "password"},
        help_text="Write-only. Send to set or replace; an empty string removes it.",
    )
    wix_app = serializers.SlugRelatedField(
        slug_field="app_id",
        queryset=WixApp.objects.all(),
        required=False,
        allow_null=True,
        help_text="The app ID (GUID) of a Wix app stored in the portal. Agency admins only.",
    )
    auth_method = serializers.CharField(read_only=True, allow_null=True)
    api_key_set = serializers.SerializerMethodField()
    credentials_readable = serializers.BooleanField(
        read_only=True,
        help_text="False when a stored secret cannot be decrypted: enter the credentials again.",
    )

    class Meta:
        model = Tenant
        fields = [
            "id",
            "name",
            "site_id",
            "notes",
            "is_active",
            "auth_method",
            "wix_app",
            "instance_id",
            "api_key",
            "api_key_set",
            "credentials_readable",
            "credentials_status",
            "credentials_checked_at",
            "credentials_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "is_active",
            "credentials_status",
            "credentials_checked_at",
            "credentials_error",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {
            # The model validates it (a GUID, used by no other tenant), in the model's words.
            "instance_id": {
                "help_text": "The Wix app's instance on this site. Agency admins only.",
                "validators": [],
            }
        }

    def get_fields(self):
        fields = super().get_fields()
        if not self._may_change_way_in():
            # Not offered in forms or the schema's answers to them, and never shown: an app
            # instance id is what a former member would need to reach the site again.
            for name in ("wix_app", "instance_id", "api_key"):
                fields.pop(name)
            fields["site_id"].read_only = True
        return fields

    def get_api_key_set(self, tenant: Tenant) -> bool:
        return bool(tenant.api_key)

    def _may_change_way_in(self) -> bool:
        request = self.context.get("request")
        user = getattr(request, "user", None)
        tenant = self.instance if isinstance(self.instance, Tenant) else None
        return access.can_change_way_in(user, tenant)

    def _way_in_sent(self) -> bool:
        """Whether the request would change the way in: a PUT that sends the tenant's own
        site back, as a client that read it does, changes nothing."""
        sent = getattr(self, "initial_data", None) or {}
        current = self.instance
        for name in access.WAY_IN_FIELDS:
            if name not in sent:
                continue
            if current is None or name == "api_key":
                return True
            value = sent[name]
            if name == "wix_app":
                stored = current.wix_app.app_id if current.wix_app else None
                unchanged = (str(value).lower() if value else None) == stored
            else:
                unchanged = str(value or "").lower() == getattr(current, name)
            if not unchanged:
                return True
        return False

    @sensitive_variables("attrs")
    def validate(self, attrs):
        if self._way_in_sent() and not self._may_change_way_in():
            raise exceptions.PermissionDenied(WAY_IN_REFUSED)
        instance = self.instance or Tenant()
        for name, value in attrs.items():
            setattr(instance, name, value)
        if self.instance is not None:
            # A new way in replaces the old one, as Tenant.use_* say; on a new tenant, both
            # given is an error for the model to name.
            if attrs.get("api_key"):
                instance.use_api_key(attrs["api_key"])
            elif attrs.get("wix_app"):
                instance.use_wix_app(attrs["wix_app"], instance_id=instance.instance_id)
        try:
            instance.full_clean()
            if services.way_in_changed(instance):
                services.confirm_instance_site(instance)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        # Saved by the view, through tenants.services.tenants.tenant_save.
        self.validated_tenant = instance
        return attrs


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "username",
            "tenant",
            "action",
            "target_type",
            "target_id",
            "target_repr",
            "parameters",
            "changes",
            "outcome",
            "error_code",
            "message",
            "wix_request_id",
            "via",
        ]
        read_only_fields = ["tenant"]
