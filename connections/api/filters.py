from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Exists, OuterRef

from common.ids import MAX_ID
from connections.models import Connection, ConnectionChange, RefreshRun
from tenants import access
from tenants.models import AuditEvent, Tenant
from wixapi import types as wix


def visible_tenants(request):
    return access.visible_tenants(request.user) if request else access.visible_tenants(None)


class IdFilter(django_filters.NumberFilter):
    """A portal id: a whole number a row can have (django-filter's NumberFilter takes
    decimals, which match by truncation, and numbers beyond 64 bits the database refuses)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class StrictBooleanField(forms.NullBooleanField):
    """true/false (or 1/0); empty is no filter. Django's field reads any other text as
    "unknown", so `removed=yes` would silently list everything."""

    # Its widget, too, reads text it does not know as "unknown"; a plain select hands it on.
    widget = forms.Select(choices=[("", "Any"), ("true", "Yes"), ("false", "No")])

    def to_python(self, value):
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise forms.ValidationError("Use true or false.", code="invalid")

    def validate(self, value):
        pass


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


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


class AuditEventFilter(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(queryset=visible_tenants)
    action = django_filters.CharFilter()
    outcome = django_filters.ChoiceFilter(choices=AuditEvent._meta.get_field("outcome").choices)

    class Meta:
        model = AuditEvent
        fields = []


class TenantScopedFilter(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(queryset=visible_tenants)


class TenantFilter(django_filters.FilterSet):
    is_active = BooleanFilter()

    class Meta:
        model = Tenant
        fields = ["is_active", "credentials_status"]
