"""Admin for the schedules mirrored from each tenant's site (Query Schedules)."""

from __future__ import annotations

from django.contrib import admin

from ..models import Schedule
from .mirror import ReadOnlyMirrorAdmin, RemovedFilter


@admin.register(Schedule)
class ScheduleAdmin(ReadOnlyMirrorAdmin):
    list_display = ["label", "tenant_name", "status", "time_zone", "wix_id", "last_seen_at"]
    list_filter = ["tenant", "status", RemovedFilter]
    search_fields = ["name", "default_title", "tenant__name", "^wix_id"]
    list_select_related = ["tenant"]
    ordering = ["-id"]
    fieldsets = [
        (None, {"fields": ["tenant", "label", "name", "default_title", "status", "time_zone"]}),
        ("Wix IDs", {"fields": ["wix_id", "external_id", "app_id"]}),
        ("Mirror", {"fields": ["first_seen_at", "last_seen_at", "removed_at"]}),
        ("Wix JSON", {"fields": ["raw_json"], "classes": ["collapse"]}),
    ]

    @admin.display(description="schedule", ordering="name")
    def label(self, obj):
        return obj.label
