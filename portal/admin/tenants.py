"""The tenant control room: the Tenant admin extended with mirror data and actions.

Registered here, in the layer above both apps: it shows `connections`' mirror rows on
`tenants`' Tenant, and neither app may import the other's pages (`tenants` registers no Tenant
admin of its own; this is the one).
Scoping and permissions come from `TenantScopedAdmin` (`Tenant.objects.visible_to`); the
credentials form and fieldsets from `tenants.admin.TenantAdmin`.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from common.badges import badge
from connections.models import (
    Connection,
    ConnectMethodChoice,
    Provider,
    RefreshOutcome,
    RefreshRun,
    Schedule,
    choices,
)
from connections.services.errors import RefreshInProgress, TenantInactive
from connections.services.queue import tenant_refresh_queue
from connections.tasks import LockUnavailable
from tenants.admin import TenantAdmin, TenantMembershipInline
from tenants.admin_scoping import TenantScopedAdmin
from tenants.models import (
    CREDENTIALS_UNREADABLE,
    CredentialsStatus,
    Tenant,
    TenantMembership,
    Via,
    WixApp,
)
from tenants.services.memberships import membership_revoke, membership_save
from tenants.services.tenants import tenant_verify_credentials
from wixapi import types as wix

from .tenant_pages import TenantPages, connection_admin_url

# Status badges in the tenant list, in this order; statuses with no connection are left out.
STATUS_ORDER = (
    wix.Status.SYNCED,
    wix.Status.CONNECTED,
    wix.Status.SYNC_IN_PROGRESS,
    wix.Status.DISCONNECTED,
    wix.Status.ERROR,
    wix.Status.UNDEFINED,
)
STATUS_LABELS = dict(choices(wix.Status))
RECENT_RUNS = 10
NOTHING_TO_DO = "Nothing done: none of the selected tenants is one you may act on."
# The tenant page lists this many connections; the connection list has the rest.
CONNECTIONS_SHOWN = 100


def ago(moment: datetime | None, *, now: datetime | None = None) -> str:
    """ "12 min ago", "3 h ago", "2 days ago"; "never" for None."""
    if moment is None:
        return "never"
    seconds = ((now or timezone.now()) - moment).total_seconds()
    if seconds < 60:
        return "just now"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min ago"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h ago"
    return f"{hours // 24} days ago"


def connection_counts(tenant_ids: list[int]) -> dict[int, dict[str, int]]:
    """Return {tenant id: {status: count}} of the tenants' present connections, in one query."""
    rows = (
        Connection.objects.filter(tenant_id__in=tenant_ids)
        .present()
        .order_by()
        .values("tenant_id")
        .annotate(**{f"n_{s.value}": Count("pk", filter=Q(status=s.value)) for s in STATUS_ORDER})
    )
    return {
        row["tenant_id"]: {
            s.value: row[f"n_{s.value}"] for s in STATUS_ORDER if row[f"n_{s.value}"]
        }
        for row in rows
    }


class TenantChangeList(ChangeList):
    """Attaches each listed tenant's connection counts, with one query for the whole page."""

    def get_results(self, request):
        super().get_results(request)
        tenants = list(self.result_list)  # fills the queryset's cache: the same objects render
        counts = connection_counts([t.pk for t in tenants])
        for tenant in tenants:
            tenant.connection_counts = counts.get(tenant.pk, {})


class LastRefreshFilter(admin.SimpleListFilter):
    title = "last refresh"
    parameter_name = "last_refresh"

    def lookups(self, request, model_admin):
        return [*RefreshOutcome.choices, ("never", "Never")]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value == "never":
            return queryset.filter(last_refresh_outcome__isnull=True)
        if value in RefreshOutcome.values:
            return queryset.filter(last_refresh_outcome=value)
        return queryset.none()


@admin.register(Tenant)
class TenantControlAdmin(TenantPages, TenantScopedAdmin, TenantAdmin):
    """Tenants with their connections at a glance; refresh, verify, connect, list events."""

    change_form_template = "admin/tenants/tenant/change_form.html"
    list_display = [
        "name",
        "site_id",
        "is_active",
        "auth_method_display",
        "connections_display",
        "last_refresh_display",
        "credentials_display",
    ]
    list_filter = [
        "is_active",
        "credentials_status",
        LastRefreshFilter,
        ("wix_app", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["name", "site_id", "notes"]
    actions = ["refresh_now", "verify_credentials"]
    # Shown to superusers only (the inline's own permissions).
    inlines = [TenantMembershipInline]

    def save_formset(self, request, form, formset, change):
        if formset.model is not TenantMembership:
            return super().save_formset(request, form, formset, change)
        memberships = formset.save(commit=False)
        for membership in formset.deleted_objects:
            membership_revoke(membership, user=request.user, via=Via.ADMIN)
        for membership in memberships:
            membership_save(membership, user=request.user, via=Via.ADMIN)
        formset.save_m2m()
        return None

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "wix_app" and not request.user.is_superuser:
            # Wix apps are the agency's; staff pick only among those their tenants use.
            kwargs["queryset"] = WixApp.objects.filter(
                tenants__in=Tenant.objects.visible_to(request.user)
            ).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_queryset(self, request) -> QuerySet:
        runs = RefreshRun.objects.filter(tenant=OuterRef("pk")).order_by("-started_at", "-pk")
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_refresh_outcome=Subquery(runs.values("outcome")[:1]),
                last_refresh_at=Subquery(runs.values("started_at")[:1]),
            )
        )

    def get_changelist(self, request, **kwargs):
        return TenantChangeList

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # django-simple-history saves a POSTed past version without asking for change rights.
        if request.method == "POST":
            tenant = self.get_queryset(request).filter(pk=unquote(object_id)).first()
            if tenant is None or not self.has_change_permission(request, tenant):
                raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    # --- List columns -------------------------------------------------------------------

    @admin.display(description="Connections")
    def connections_display(self, obj):
        counts = getattr(obj, "connection_counts", None)
        if counts is None:
            counts = connection_counts([obj.pk]).get(obj.pk, {})
        if not counts:
            return "—"
        return format_html_join(
            " ",
            "{}",
            ((badge(status, STATUS_LABELS[status], count=n),) for status, n in counts.items()),
        )

    @admin.display(description="Last refresh", ordering="last_refresh_at")
    def last_refresh_display(self, obj):
        outcome = getattr(obj, "last_refresh_outcome", None)
        if outcome is None:
            return "never"
        return format_html(
            "{} {}",
            badge(outcome, RefreshOutcome(outcome).label),
            ago(obj.last_refresh_at),
        )

    @admin.display(description="Credentials", ordering="credentials_status")
    def credentials_display(self, obj):
        if not obj.credentials_readable:
            return badge(CredentialsStatus.FAILED, CREDENTIALS_UNREADABLE)
        label = badge(obj.credentials_status, obj.get_credentials_status_display())
        if obj.credentials_checked_at is None:
            return label
        return format_html("{} {}", label, f"checked {ago(obj.credentials_checked_at)}")

    # --- Actions ------------------------------------------------------------------------

    @admin.action(description="Refresh now", permissions=["change"])
    def refresh_now(self, request, queryset):
        tenants = list(self.operable(request, queryset))
        if not tenants:
            self.message_user(request, NOTHING_TO_DO, messages.WARNING)
            return
        started, inactive = [], []
        for tenant in tenants:
            try:
                tenant_refresh_queue(tenant, user=request.user, via=Via.ADMIN)
            except TenantInactive:
                inactive.append(tenant)
            except RefreshInProgress as exc:
                self.message_user(request, str(exc), messages.WARNING)
            except LockUnavailable:
                self.message_user(request, LockUnavailable.default_detail, messages.ERROR)
            else:
                started.append(tenant)
        if started:
            names = ", ".join(t.name for t in started)
            self.message_user(
                request,
                f"Refresh started for {names}. "
                "The outcome appears under “Recent refreshes” on the tenant's page.",
                messages.SUCCESS,
            )
        if inactive:
            names = ", ".join(t.name for t in inactive)
            self.message_user(request, f"Not refreshed (inactive): {names}.", messages.WARNING)

    @admin.action(description="Verify credentials", permissions=["change"])
    def verify_credentials(self, request, queryset):
        tenants = list(self.operable(request, queryset))
        if not tenants:
            self.message_user(request, NOTHING_TO_DO, messages.WARNING)
        for tenant in tenants:
            ok = tenant_verify_credentials(tenant, user=request.user, via=Via.ADMIN)
            if ok:
                self.message_user(request, f"{tenant.name}: credentials OK.", messages.SUCCESS)
            else:
                self.message_user(
                    request,
                    f"{tenant.name}: credentials failed: {tenant.credentials_error}",
                    messages.ERROR,
                )

    # --- Change page --------------------------------------------------------------------

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(self.control_room_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def control_room_context(self, request, tenant: Tenant) -> dict:
        providers = list(Provider.objects.for_tenant(tenant).present())
        provider_names = {p.wix_id: p.name for p in providers}
        connections = list(
            Connection.objects.for_tenant(tenant)
            .present()
            .select_related("schedule", "provider")
            .order_by("schedule__name", "calendar_type", "pk")[: CONNECTIONS_SHOWN + 1]
        )
        runs = list(
            RefreshRun.objects.for_tenant(tenant).order_by("-started_at", "-pk")[:RECENT_RUNS]
        )
        for run in runs:
            run.outcome_badge = badge(run.outcome, run.get_outcome_display())
            run.failed_provider_names = [
                provider_names.get(pid, pid) for pid in run.failed_provider_ids
            ]
        for connection in connections:
            connection.admin_url = connection_admin_url(connection)
            connection.status_badge = badge(connection.status, connection.get_status_display())
        opts = self.opts
        return {
            "control": {
                "providers": [
                    {
                        "name": p.name,
                        "calendar_type": p.get_calendar_type_display(),
                        "methods": ", ".join(
                            ConnectMethodChoice(m).label
                            for m in p.connect_methods
                            if m in ConnectMethodChoice.values
                        ),
                        "import": p.get_import_capability_display(),
                        "export": p.get_export_capability_display(),
                        "sync_settings": p.can_update_sync_config,
                    }
                    for p in providers
                ],
                "schedules": list(Schedule.objects.for_tenant(tenant).present()),
                "connections": connections[:CONNECTIONS_SHOWN],
                "more_connections": len(connections) > CONNECTIONS_SHOWN,
                "connection_list_url": self._connection_list_url(tenant),
                "runs": runs,
                "can_connect": self.has_change_permission(request, tenant),
                "connect_url": reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_connect", args=[tenant.pk]
                ),
                "events_url": reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_events", args=[tenant.pk]
                ),
                "connect_requests_url": (
                    reverse("admin:connections_connectrequest_changelist") + f"?tenant={tenant.pk}"
                ),
            }
        }

    @staticmethod
    def _connection_list_url(tenant: Tenant) -> str:
        return reverse("admin:connections_connection_changelist") + f"?tenant={tenant.pk}"
