"""Filters of the tenants' API: tenants and the audit trail."""

from __future__ import annotations

import django_filters

from common.api_filters import BooleanFilter
from tenants.models import AuditEvent, Tenant


def visible_tenants(request):
    """The tenant choices a filter offers: those the request's user may see."""
    return Tenant.objects.visible_to(getattr(request, "user", None))


class AuditEventFilter(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(queryset=visible_tenants)
    action = django_filters.CharFilter()
    outcome = django_filters.ChoiceFilter(choices=AuditEvent._meta.get_field("outcome").choices)

    class Meta:
        model = AuditEvent
        fields = []


class TenantFilter(django_filters.FilterSet):
    is_active = BooleanFilter()

    class Meta:
        model = Tenant
        fields = ["is_active", "credentials_status"]
