"""Tenant scoping for every admin page: staff see only their tenants, viewers only look.

`TenantScopedAdmin` filters querysets, foreign-key choices, the tenant list filter and
actions through `tenants.access`; Django's per-model permissions are not used for tenant
data, so a membership is all a staff user needs.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from . import access
from .models import Tenant


class ScopedTenantFilter(admin.SimpleListFilter):
    """A tenant filter over the tenants the user may see: links when they are few, else a box.

    Thousands of links would cost more to render than the rows themselves, and nobody scrolls
    them; past `MAX_LINKS` tenants the filter is a text box taking a tenant id or the start of
    a tenant name. Either way the rows stay scoped by the admin's queryset.
    """

    title = _("tenant")
    parameter_name = "tenant"
    MAX_LINKS = 50
    box_template = "admin/tenants/tenant_filter_box.html"

    def __init__(self, request, params, model, model_admin):
        self.selected_name = ""
        super().__init__(request, params, model, model_admin)
        if self.as_box:
            self.template = self.box_template
            value = self.value()
            if value and str(value).isdigit():
                name = Tenant.objects.visible_to(request.user).filter(pk=value).values("name")
                self.selected_name = next((t["name"] for t in name), "")

    def lookups(self, request, model_admin):
        tenants = list(
            Tenant.objects.visible_to(request.user)
            .order_by("name", "pk")
            .values_list("pk", "name")[: self.MAX_LINKS + 1]
        )
        self.as_box = len(tenants) > self.MAX_LINKS
        return [] if self.as_box else tenants

    def has_output(self):
        return self.as_box or super().has_output()

    def choices(self, changelist):
        if not self.as_box:
            yield from super().choices(changelist)
            return
        # What the box's form carries along: every other filter and the search.
        yield {
            "selected": self.value() is not None,
            "value": self.value() or "",
            "selected_name": self.selected_name,
            "clear_query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "hidden": [
                (key, value)
                for key, values in changelist.filter_params.items()
                if key != self.parameter_name
                for value in values
            ],
        }

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        value = str(value).strip()
        path = model_admin_tenant_path(queryset.model)
        if value.isdigit():
            return queryset.filter(**{path: value})
        if not self.as_box or not value:
            return queryset.none()
        named = Tenant.objects.filter(name__istartswith=value).values("pk")
        return queryset.filter(**{f"{path}__in": named})


def model_admin_tenant_path(model) -> str:
    return "pk" if model is Tenant else "tenant"


class TenantScopedAdmin(admin.ModelAdmin):
    """Base for admins of Tenant and of tenant-owned models (`TenantOwned`): every row, choice
    and object comes through their QuerySets' `visible_to` and `operable_by`."""

    # Mirror and log rows are written by the portal alone.
    read_only_model = False

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)

    def tenant_of(self, obj) -> Tenant | None:
        if obj is None or isinstance(obj, Tenant):
            return obj
        return obj.tenant

    def reach(self, request, object_id, *, act: bool, action: str | None = None):
        """The object `object_id`, if the user may see it (else 404) and, with `act`, act on
        it (else 403; given an `action`, the refusal is recorded as DENIED `<model>.<action>`)."""
        object_id = unquote(str(object_id))
        try:
            if self.model is Tenant:
                return access.access_tenant(request.user, object_id, act=act)
            return access.access_tenant_object(
                request.user, self.get_queryset(request), object_id, act=act
            )
        except access.NotVisible:
            raise Http404(f"No such {self.opts.verbose_name}.") from None
        except access.ViewOnly as refused:
            if action is None:
                raise PermissionDenied(str(refused)) from None
            obj = self.get_object(request, object_id)
            raise PermissionDenied(
                access.deny(
                    request.user,
                    action=f"{self.opts.model_name}.{action}",
                    tenant=self.tenant_of(obj),
                    target=obj,
                    message=str(refused),
                    via="admin",
                )
            ) from None

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
            kwargs["queryset"] = Tenant.objects.operable_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_list_filter(self, request):
        return [
            ScopedTenantFilter if f == "tenant" else f for f in super().get_list_filter(request)
        ]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except PermissionDenied:
            if request.method == "POST":
                # A change posted without the right to it: a viewer's forged form.
                obj = self.get_object(request, unquote(object_id)) if object_id else None
                access.deny(
                    request.user,
                    action=f"{self.opts.model_name}.change",
                    tenant=self.tenant_of(obj),
                    target=obj,
                    via="admin",
                )
            raise

    # --- Actions: only operators, only on their tenants ---------------------------------

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not access.is_operator_anywhere(request.user):
            return {}
        return actions

    def operable(self, request, queryset: QuerySet) -> QuerySet:
        """Narrow an action's selection to the user's operable tenants, saying what was left out."""
        if request.user.is_superuser and request.user.is_active:
            return queryset
        allowed = queryset.operable_by(request.user)
        denied = queryset.count() - allowed.count()
        if denied:
            access.deny(
                request.user,
                action=f"{self.opts.model_name}.{request.POST.get('action', 'action')}",
                message=f"{denied} selected item(s) of tenants the user may only view.",
                via="admin",
            )
            self.message_user(
                request,
                f"{denied} selected item(s) belong to tenants you may only view; left unchanged.",
                messages.WARNING,
            )
        return allowed
