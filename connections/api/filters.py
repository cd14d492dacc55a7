from __future__ import annotations

import django_filters
from django.db.models import Exists, OuterRef

from common.api_filters import BooleanFilter, IdFilter
from connections.models import Connection, ConnectionChange, RefreshRun
from tenants.api.filters import visible_tenants
from wixapi import types as wix


def enum_choices(enum) -> list[tuple[str, str]]:
    return [(m.value, m.value) for m in enum]


class ConnectionFilter(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(queryset=visible_tenants)
    status = django_filters.MultipleChoiceFilter(
        choices=enum_choices(wix.Status),
        help_text="Repeat for several: status=ERROR&status=DISCONNECTED",
        # No join, so no duplicates: DISTINCT would only make the database sort every match.
        distinct=False,
    )
    error_reason = django_filters.ChoiceFilter(choices=enum_choices(wix.ErrorReason))
    calendar_type = django_filters.ChoiceFilter(choices=enum_choices(wix.CalendarType))
    schedule = IdFilter(field_name="schedule_id")
    email = django_filters.CharFilter(
        method="filter_email", help_text="The external account's email, as given or lower-cased."
    )
    import_enabled = BooleanFilter()
    export_enabled = BooleanFilter()
    removed = BooleanFilter(method="filter_removed")
    changed_since = django_filters.IsoDateTimeFilter(
        method="filter_changed_since", help_text="Connections with a recorded change since then."
    )

    class Meta:
        model = Connection
        fields = []

    def filter_removed(self, queryset, name, value):
        return queryset.filter(removed_at__isnull=not value)

    def filter_email(self, queryset, name, value):
        # An exact match can use the email index; iexact (UPPER() or LIKE) reads every row.
        # Providers hand emails over lower-cased, so the lower-cased value finds those.
        return queryset.filter(external_account_email__in={value, value.lower()})

    def filter_changed_since(self, queryset, name, value):
        changes = ConnectionChange.objects.filter(connection=OuterRef("pk"), changed_at__gte=value)
        return queryset.filter(Exists(changes))


class RefreshRunFilter(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(queryset=visible_tenants)
    outcome = django_filters.ChoiceFilter(choices=RefreshRun._meta.get_field("outcome").choices)

    class Meta:
        model = RefreshRun
        fields = []


class TenantScopedFilter(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(queryset=visible_tenants)
