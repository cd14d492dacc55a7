"""The outbox in the admin: superusers read what the portal would have emailed."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from .models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "recipients", "subject"]
    search_fields = ["subject", "to"]
    date_hierarchy = "created_at"
    fields = ["created_at", "from_email", "recipients", "subject", "headers", "text", "html_part"]
    readonly_fields = fields

    # Emails name tenants and people: the outbox is the superusers'.
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    @admin.display(description="to")
    def recipients(self, obj):
        return ", ".join(obj.to)

    @admin.display(description="HTML part")
    def html_part(self, obj):
        # Shown as source, never rendered: an email's HTML is not the admin's to run.
        return (
            format_html("<pre style='white-space: pre-wrap'>{}</pre>", obj.html)
            if obj.html
            else "—"
        )
