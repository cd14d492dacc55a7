"""Tenants and the agency's Wix apps.

`TenantAdmin` holds the credentials form, fieldsets and redaction; it is registered by the
portal, which adds the mirror (portal/admin/tenants.py). Wix apps are registered here.
"""

from __future__ import annotations

from django.contrib import admin
from django.views.decorators.debug import sensitive_post_parameters
from simple_history.admin import SimpleHistoryAdmin

from tenants import access
from tenants.admin_history import HistoryOutOfReachIs404
from tenants.models import Via, WixApp, secret_hint
from tenants.services.tenants import tenant_save
from tenants.services.wix_apps import wix_app_save

from .access import SuperuserOnly
from .forms import TenantForm, WixAppForm


class SecretsNotReported:
    """Admin mixin: Django's error reports never show the secrets posted to the change form."""

    secret_post_fields = ("api_key", "app_secret")

    def changeform_view(self, request, *args, **kwargs):
        return sensitive_post_parameters(*self.secret_post_fields)(super().changeform_view)(
            request, *args, **kwargs
        )


@admin.register(WixApp)
class WixAppAdmin(SecretsNotReported, HistoryOutOfReachIs404, SuperuserOnly, SimpleHistoryAdmin):
    """The agency's OAuth app credentials: for superusers only."""

    form = WixAppForm
    list_display = ["name", "app_id", "updated_at"]
    search_fields = ["name", "app_id"]
    readonly_fields = ["created_at", "updated_at"]
    fields = ["name", "app_id", "app_secret", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        wix_app_save(obj, user=request.user, via=Via.ADMIN)


class TenantAdmin(SecretsNotReported, HistoryOutOfReachIs404, SimpleHistoryAdmin):
    form = TenantForm
    list_display = ["name", "site_id", "is_active", "auth_method_display", "credentials_status"]
    list_filter = ["is_active", "credentials_status", "wix_app"]
    search_fields = ["name", "site_id"]
    list_select_related = ["wix_app"]
    readonly_fields = [
        "credentials_status",
        "credentials_checked_at",
        "credentials_error",
        "created_at",
        "updated_at",
    ]

    def get_readonly_fields(self, request, obj=None):
        readonly = [*super().get_readonly_fields(request, obj), "auth_method_display"]
        if obj is not None and not access.can_change_way_in(request.user, obj):
            readonly += ["site_id", "wix_app", "api_key_display"]
        return readonly

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not access.can_change_way_in(request.user, obj):
            # Operators and viewers see how the tenant reaches Wix, never the app instance
            # id or the key, and cannot change it (tenants.access.WAY_IN_FIELDS).
            way_in = ("Way in (changed by agency admins)", {"fields": self.way_in_summary})
        else:
            api_key_fields = ["api_key"] if obj is None else ["api_key", "clear_api_key"]
            way_in = (
                "Way in: a Wix app instance (OAuth) or an API key, not both",
                {"fields": ["wix_app", "instance_id", *api_key_fields]},
            )
        return [
            (None, {"fields": ["name", "site_id", "is_active", "notes"]}),
            way_in,
            (
                "Credentials check",
                {"fields": ["credentials_status", "credentials_checked_at", "credentials_error"]},
            ),
            (None, {"fields": ["created_at", "updated_at"]}),
        ]

    way_in_summary = ["auth_method_display", "wix_app", "api_key_display"]

    @admin.display(description="Auth method")
    def auth_method_display(self, obj):
        method = obj.auth_method
        return method.label if method else "—"

    @admin.display(description="API key")
    def api_key_display(self, obj):
        return secret_hint(obj.api_key).capitalize()

    def save_model(self, request, obj, form, change):
        # The form validated it (the model's rules, and Wix's word on a new app instance).
        tenant_save(obj, user=request.user, via=Via.ADMIN)
