"""The audit trail, read-only, scoped to the user's tenants."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from common.badges import badge
from tenants.admin_scoping import TenantScopedAdmin
from tenants.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(TenantScopedAdmin):
    """The audit trail, read-only. Events without a tenant are for superusers only."""

    read_only_model = True
    actions = None
    list_display = [
        "created_at",
        "who",
        "tenant",
        "action",
        "target_repr",
        "outcome_badge",
        "error_code",
        "wix_request_id",
    ]
    list_display_links = ["created_at"]
    list_filter = ["tenant", "action", "outcome", "via"]
    search_fields = [
        "username",
        "action",
        "target_repr",
        "target_id",
        "error_code",
        "wix_request_id",
        "message",
        "tenant__name",
    ]
    list_select_related = ["tenant"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "who",
        "tenant",
        "via",
        "action",
        "target_type",
        "target_id",
        "target_repr",
        "outcome_badge",
        "error_code",
        "message",
        "wix_request_id",
        "changes_pretty",
        "parameters_pretty",
    ]
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        if obj is not None and obj.tenant_id is None:
            return request.user.is_active and request.user.is_staff and request.user.is_superuser
        return super().has_view_permission(request, obj)

    @admin.display(description="who", ordering="username")
    def who(self, obj):
        return obj.username or "system"

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, obj):
        return badge(obj.outcome, obj.get_outcome_display())

    @admin.display(description="changes (old → new)")
    def changes_pretty(self, obj):
        if not obj.changes:
            return "—"
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>→</td><td>{}</td></tr>",
            (
                (name, _compact(old), _compact(new))
                for name, (old, new) in sorted(obj.changes.items())
            ),
        )
        return format_html('<table class="audit-changes">{}</table>', rows)

    @admin.display(description="parameters")
    def parameters_pretty(self, obj):
        return format_html(
            '<pre style="margin: 0; white-space: pre-wrap">{}</pre>', _json(obj.parameters)
        )


def _json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _compact(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
