from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from tenants.models import Tenant, WixApp


class TenantSerializer(serializers.ModelSerializer):
    """A tenant; its API key is write-only and shown back only as `api_key_set`."""

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
        help_text="The app ID (GUID) of a Wix app stored in the portal.",
    )
    auth_method = serializers.CharField(read_only=True, allow_null=True)
    api_key_set = serializers.SerializerMethodField()

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

    def get_api_key_set(self, tenant: Tenant) -> bool:
        return bool(tenant.api_key)

    def validate(self, attrs):
        instance = self.instance or Tenant()
        credentials_changed = {"wix_app", "instance_id", "api_key"} & attrs.keys()
        for name, value in attrs.items():
            setattr(instance, name, value)
        if credentials_changed and self.instance is not None:
            instance.mark_credentials_unverified()
            if attrs.get("api_key"):
                instance.wix_app, instance.instance_id = None, ""
            elif attrs.get("wix_app"):
                instance.api_key = ""
        try:
            instance.full_clean(validate_unique=False, validate_constraints=False)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        self._validated_instance = instance
        return attrs

    def create(self, validated_data):
        instance = self._validated_instance
        instance.save()
        return instance

    def update(self, instance, validated_data):
        instance = self._validated_instance
        instance.save()
        return instance
