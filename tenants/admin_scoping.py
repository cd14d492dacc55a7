"""Tenant scoping for every admin page: staff see only their tenants, viewers only look.

`TenantScopedAdmin` filters querysets, foreign-key choices, the tenant list filter and
actions through `tenants.access`; Django's per-model permissions are not used for tenant
data, so a membership is all a staff user needs.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from . import access
from .models import Tenant


class ScopedTenantFilter(admin.SimpleListFilter):
    """A tenant filter that lists only the tenants the user may see."""

    title = _("tenant")
    parameter_name = "tenant"

    def lookups(self, request, model_admin):
        return list(access.visible_tenants(request.user).values_list("pk", "name"))

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not str(value).isdigit():
            return queryset.none()
        return queryset.filter(**{model_admin_tenant_path(queryset.model): value})


def model_admin_tenant_path(model) -> str:
    return "pk" if model is Tenant else "tenant"


class TenantScopedAdmin(admin.ModelAdmin):
    """Base for admins of tenant data. `tenant_path` leads from the model to its Tenant."""

    tenant_path = "tenant"
    # Mirror and log rows are written by the portal alone.
    read_only_model = False

    def scope(self, request, queryset: QuerySet) -> QuerySet:
        tenants = access.visible_tenants(request.user)
        if request.user.is_superuser:
            return queryset
        if self.tenant_path == "pk":
            return queryset.filter(pk__in=tenants.values("pk"))
        return queryset.filter(**{f"{self.tenant_path}__in": tenants.values("pk")})

    def get_queryset(self, request):
        return self.scope(request, super().get_queryset(request))

    def tenant_of(self, obj) -> Tenant | None:
        if obj is None:
            return None
        if self.tenant_path == "pk":
            return obj
        target = obj
        for part in self.tenant_path.split("__"):
            target = getattr(target, part)
        return target

    # --- Permissions: memberships, not model permissions --------------------------------

    def has_module_permission(self, request):
        return request.user.is_staff and access.has_any_tenant(request.user)

    def has_view_permission(self, request, obj=None):
        if not (request.user.is_staff and access.has_any_tenant(request.user)):
            return False
        return obj is None or access.can_see(request.user, self.tenant_of(obj))

    def has_add_permission(self, request):
        return not self.read_only_model and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        if self.read_only_model or not request.user.is_staff:
            return False
        if obj is None:
            return access.is_operator_anywhere(request.user)
        return access.can_act(request.user, self.tenant_of(obj))

    def has_delete_permission(self, request, obj=None):
        return not self.read_only_model and request.user.is_superuser

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Tenant:
            kwargs["queryset"] = access.operable_tenants(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_list_filter(self, request):
        return [
            ScopedTenantFilter if f == "tenant" else f for f in super().get_list_filter(request)
        ]

    # --- Actions: only operators, only on their tenants ---------------------------------

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not access.is_operator_anywhere(request.user):
            return {}
        return actions

    def operable(self, request, queryset: QuerySet) -> QuerySet:
        """Narrow an action's selection to the user's operable tenants, saying what was left out."""
        if request.user.is_superuser:
            return queryset
        tenants = access.operable_tenants(request.user).values("pk")
        path = "pk" if self.tenant_path == "pk" else f"{self.tenant_path}__in"
        allowed = (
            queryset.filter(pk__in=tenants) if path == "pk" else queryset.filter(**{path: tenants})
        )
        denied = queryset.count() - allowed.count()
        if denied:
            self.message_user(
                request,
                f"{denied} selected item(s) belong to tenants you may only view; left unchanged.",
                messages.WARNING,
            )
        return allowed
