"""Admin for connection changes: what refreshes and actions saw change, old and new."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from ..models import ConnectionChange
from .mirror import ReadOnlyMirrorAdmin
from .text import describe_change, pretty_json


@admin.register(ConnectionChange)
class ConnectionChangeAdmin(ReadOnlyMirrorAdmin):
    list_display = [
        "changed_at",
        "tenant_name",
        "connection_link",
        "kind",
        "field",
        "old_to_new",
        "refresh_run_link",
    ]
    list_display_links = ["changed_at"]
    list_filter = ["tenant", "kind", "field"]
    search_fields = [
        "connection__external_account_email",
        "connection__schedule__name",
        "tenant__name",
        "^connection__wix_id",
    ]
    list_select_related = ["tenant", "connection__tenant", "connection__schedule", "refresh_run"]
    ordering = ["-id"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "tenant",
                    "connection_link",
                    "changed_at",
                    "kind",
                    "field",
                    "refresh_run_link",
                ]
            },
        ),
        ("Values", {"fields": ["old_json", "new_json"]}),
    ]

    def lookup_allowed(self, lookup, value, request=None):
        # The connection page links here for its full history; rows stay tenant-scoped.
        return lookup == "connection__id__exact" or super().lookup_allowed(lookup, value, request)

    @admin.display(description="connection")
    def connection_link(self, obj):
        url = reverse("admin:connections_connection_change", args=[obj.connection_id])
        return format_html('<a href="{}">{}</a>', url, obj.connection)

    @admin.display(description="old → new")
    def old_to_new(self, obj):
        return describe_change(obj)

    @admin.display(description="refresh run")
    def refresh_run_link(self, obj):
        if obj.refresh_run_id is None:
            return "An action in the portal"
        url = reverse("admin:connections_refreshrun_change", args=[obj.refresh_run_id])
        started = obj.refresh_run.started_at.strftime("%Y-%m-%d %H:%M")
        return format_html('<a href="{}">Refresh of {}</a>', url, started)

    @admin.display(description="old value")
    def old_json(self, obj):
        return pretty_json(obj.old_value)

    @admin.display(description="new value")
    def new_json(self, obj):
        return pretty_json(obj.new_value)
