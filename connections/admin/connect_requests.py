"""Admin for connect requests: who asked whom to connect which schedule, and how it ended."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from common.badges import badge
from tenants.admin_scoping import TenantScopedAdmin

from ..messages import OAUTH_ERRORS
from ..models import ConnectRequest


@admin.register(ConnectRequest)
class ConnectRequestAdmin(TenantScopedAdmin):
    """Who asked whom to connect which schedule, and how it ended; the state token never shows."""

    read_only_model = True
    list_display = [
        "created_at",
        "tenant",
        "schedule",
        "provider",
        "created_by",
        "status_display",
        "error",
        "expires_at",
        "connection_link",
    ]
    list_filter = ["tenant", "status", "provider__calendar_type"]
    list_select_related = ["tenant", "schedule", "provider", "created_by", "connection"]
    search_fields = ["schedule__name", "created_by__username", "tenant__name"]
    fields = [
        "tenant",
        "schedule",
        "provider",
        "method",
        "created_by",
        "created_at",
        "expires_at",
        "status_display",
        "error_display",
        "completed_at",
        "connection_link",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(*self.list_select_related)

    @admin.display(description="Status", ordering="status")
    def status_display(self, obj):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="Error")
    def error_display(self, obj):
        if not obj.error:
            return "—"
        return f"{OAUTH_ERRORS.get(obj.error, obj.error)} ({obj.error})"

    @admin.display(description="Connection")
    def connection_link(self, obj):
        if obj.connection is None:
            return "—"
        url = reverse("admin:connections_connection_change", args=[obj.connection.pk])
        label = obj.connection.external_account_email or obj.connection.get_calendar_type_display()
        return format_html('<a href="{}">{}</a>', url, label) if url else label
