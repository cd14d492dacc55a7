"""Who may see which tenant: memberships, granted, changed and revoked by superusers
(`tenants.services.memberships`, which audits them)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from simple_history.admin import SimpleHistoryAdmin

from tenants.admin_history import HistoryOutOfReachIs404
from tenants.models import TenantMembership, Via
from tenants.services.memberships import membership_revoke, membership_save


class SuperuserOnly:
    """Only superusers see or touch these records; staff never see the admin at all."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request, *args):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


def staff_users():
    """Who can be given a membership: staff accounts (the admin is for staff only)."""
    return get_user_model().objects.filter(is_staff=True).order_by("username")


class TenantMembershipInline(SuperuserOnly, admin.TabularInline):
    """The tenant's members on its change page; for the control room's tenant admin too."""

    model = TenantMembership
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    extra = 0
    verbose_name = "member"
    verbose_name_plural = "Members (staff who may see this tenant; operators may act)"

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = staff_users()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(TenantMembership)
class TenantMembershipAdmin(HistoryOutOfReachIs404, SuperuserOnly, SimpleHistoryAdmin):
    """Who may see which tenant. Granting, changing and removing access is audited."""

    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant", "user__is_active"]
    search_fields = ["user__username", "user__email", "tenant__name"]
    list_select_related = ["user", "tenant"]
    fields = ["user", "tenant", "role", "created_at"]
    readonly_fields = ["created_at"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = staff_users()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change or form.changed_data:
            membership_save(obj, user=request.user, via=Via.ADMIN)

    def delete_model(self, request, obj):
        membership_revoke(obj, user=request.user, via=Via.ADMIN)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("user", "tenant"):
            membership_revoke(membership, user=request.user, via=Via.ADMIN)
