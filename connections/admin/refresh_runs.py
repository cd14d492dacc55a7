"""Admin for refresh runs: when each tenant's mirror was refreshed, how it went."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html_join

from common.badges import badge

from ..models import Provider, RefreshRun
from .mirror import ReadOnlyMirrorAdmin


@admin.register(RefreshRun)
class RefreshRunAdmin(ReadOnlyMirrorAdmin):
    list_display = [
        "started_at",
        "tenant_name",
        "trigger",
        "outcome_badge",
        "counts",
        "error",
        "failed_providers_count",
        "duration_display",
        "wix_calls",
    ]
    list_display_links = ["started_at"]
    list_filter = ["tenant", "outcome", "trigger"]
    search_fields = ["tenant__name", "error_code", "wix_request_id"]
    list_select_related = ["tenant"]
    # The primary key follows `started_at` and is indexed.
    ordering = ["-id"]
    fieldsets = [
        (None, {"fields": ["tenant", "trigger", "outcome_badge", "started_at", "finished_at"]}),
        (
            "What changed",
            {
                "fields": [
                    "new_count",
                    "changed_count",
                    "unchanged_count",
                    "removed_count",
                    "wix_calls",
                    "duration_display",
                ]
            },
        ),
        (
            "Failures",
            {
                "fields": [
                    "error_code",
                    "error_message",
                    "wix_request_id",
                    "failed_providers",
                ]
            },
        ),
    ]

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, obj):
        return badge(obj.outcome, obj.get_outcome_display())

    @admin.display(description="new / changed / unchanged / removed")
    def counts(self, obj):
        return (
            f"{obj.new_count} / {obj.changed_count} / {obj.unchanged_count} / {obj.removed_count}"
        )

    @admin.display(description="error")
    def error(self, obj):
        if not obj.error_code:
            return "—"
        return f"{obj.error_code}: {obj.error_message[:120]}"

    @admin.display(description="failed providers")
    def failed_providers_count(self, obj):
        return len(obj.failed_provider_ids) or "—"

    @admin.display(description="failed providers")
    def failed_providers(self, obj):
        if not obj.failed_provider_ids:
            return "—"
        names = dict(
            Provider.objects.filter(
                tenant_id=obj.tenant_id, wix_id__in=obj.failed_provider_ids
            ).values_list("wix_id", "name")
        )
        return format_html_join(
            ", ", "{} ({})", ((names.get(i, "unknown"), i) for i in obj.failed_provider_ids)
        )

    @admin.display(description="duration")
    def duration_display(self, obj):
        duration = obj.duration
        return f"{duration.total_seconds():.1f} s" if duration is not None else "—"
