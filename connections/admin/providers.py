"""Admin for the providers mirrored from each tenant's site (List Providers)."""

from __future__ import annotations

from django.contrib import admin

from ..models import Provider
from .mirror import ReadOnlyMirrorAdmin, RemovedFilter


@admin.register(Provider)
class ProviderAdmin(ReadOnlyMirrorAdmin):
    list_display = [
        "name",
        "tenant_name",
        "calendar_type",
        "methods",
        "import_capability",
        "export_capability",
        "can_update_sync_config",
        "last_seen_at",
    ]
    list_filter = ["tenant", "calendar_type", "can_update_sync_config", RemovedFilter]
    search_fields = ["name", "tenant__name", "^wix_id"]
    list_select_related = ["tenant"]
    ordering = ["-id"]
    fieldsets = [
        (None, {"fields": ["tenant", "name", "calendar_type", "wix_id"]}),
        (
            "What it can do",
            {
                "fields": [
                    "methods",
                    "import_capability",
                    "export_capability",
                    "can_update_sync_config",
                ]
            },
        ),
        ("Mirror", {"fields": ["first_seen_at", "last_seen_at", "removed_at"]}),
        ("Wix JSON", {"fields": ["raw_json"], "classes": ["collapse"]}),
    ]

    @admin.display(description="connect methods")
    def methods(self, obj):
        return ", ".join(obj.connect_methods) or "—"
