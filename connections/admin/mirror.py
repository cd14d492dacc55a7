"""What every page of mirrored rows shares: read-only, lean lists, the presence filter."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList

from tenants.admin_scoping import TenantScopedAdmin

from .text import pretty_json


class RemovedFilter(admin.SimpleListFilter):
    """Present rows (still in Wix) by default; removed ones, or all, on request."""

    title = "presence in Wix"
    parameter_name = "removed"

    def lookups(self, request, model_admin):
        return [("no", "Present"), ("yes", "Removed"), ("all", "All")]

    def choices(self, changelist):
        value = self.value() if self.value() in ("yes", "all") else "no"
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if value == "all":
            return queryset
        return queryset.filter(removed_at__isnull=value != "yes")


def json_columns(model, related) -> list[str]:
    """The `raw` columns of the model and of the related models `related` selects."""
    lookups = {""} | {
        "__".join(lookup.split("__")[: depth + 1])
        for lookup in related
        for depth in range(lookup.count("__") + 1)
    }
    columns = []
    for lookup in sorted(lookups):
        target = model
        for part in filter(None, lookup.split("__")):
            target = target._meta.get_field(part).related_model
        if any(f.name == "raw" for f in target._meta.concrete_fields):
            columns.append(f"{lookup}__raw" if lookup else "raw")
    return columns


class LeanChangeList(ChangeList):
    """A changelist that leaves the Wix JSON of its rows and their related rows unread."""

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.defer(*json_columns(self.model, self.list_select_related or ()))


class ReadOnlyMirrorAdmin(TenantScopedAdmin):
    """Rows the portal writes alone: every page is read-only, for everyone."""

    read_only_model = True
    show_full_result_count = False

    def get_changelist(self, request, **kwargs):
        return LeanChangeList

    def get_actions(self, request):
        # The changelist asks several times per request; each answer costs queries.
        memo = request.__dict__.setdefault("_portal_actions", {})
        if self.opts.label not in memo:
            memo[self.opts.label] = super().get_actions(request)
        return memo[self.opts.label]

    def get_readonly_fields(self, request, obj=None):
        return [
            name for fieldset in self.get_fieldsets(request, obj) for name in fieldset[1]["fields"]
        ]

    @admin.display(description="tenant", ordering="tenant__name")
    def tenant_name(self, obj):
        return obj.tenant.name

    @admin.display(description="Wix JSON")
    def raw_json(self, obj):
        return pretty_json(obj.raw)
