"""Admin for connections across tenants: the list, a connection's page with its history and
buttons, its sync settings page."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from common.badges import badge
from tenants import access
from tenants.models import Tenant, Via
from wixapi import types as wix
from wixapi.errors import WixError

from .. import selectors
from ..forms import SyncSettingsForm
from ..messages import describe_wix_error, name_of
from ..models import Connection, Schedule
from ..services.actions import connection_set_sync_config, reconnect_refusal
from ..services.errors import ActionRefused
from .connection_actions import ConnectionActions
from .mirror import ReadOnlyMirrorAdmin, RemovedFilter
from .text import describe_change


@admin.register(Connection)
class ConnectionAdmin(ConnectionActions, ReadOnlyMirrorAdmin):
    list_display = [
        "tenant_name",
        "schedule_label",
        "provider_label",
        "external_account_email",
        "status_badge",
        "error_reason",
        "import_display",
        "export_display",
        "last_seen_at",
    ]
    list_display_links = ["schedule_label"]
    list_filter = [
        "tenant",
        "status",
        "error_reason",
        "calendar_type",
        "import_enabled",
        "export_enabled",
        RemovedFilter,
    ]
    # What `get_search_results` matches; listed for the search box and the autocomplete.
    search_fields = ["^external_account_email", "^schedule__name", "^tenant__name", "^wix_id"]
    search_help_text = (
        "Connections whose account email, schedule name or tenant name starts with the text "
        "(in any case), or whose Wix ID starts with it."
    )
    list_select_related = ["tenant", "schedule", "provider"]
    # Rendering is most of a page's time (about 0.6 ms per row); 50 rows halve it, and a
    # page's selection stays within MAX_ACTION_ROWS.
    list_per_page = 50
    # The primary key: indexed, and new connections first.
    ordering = ["-id"]
    fieldsets = [
        (
            "Who and what",
            {
                "fields": [
                    "tenant_link",
                    "schedule_label",
                    "provider_label",
                    "calendar_type",
                    "external_account_email",
                ]
            },
        ),
        (
            "Status",
            {"fields": ["status_badge", "error_reason", "status_changed_at", "removed_at"]},
        ),
        ("Sync settings", {"fields": ["import_display", "export_display"]}),
        (
            "Wix IDs",
            {"fields": ["wix_id", "provider_wix_id", "schedule_wix_id", "user_id", "app_id"]},
        ),
        ("Mirror", {"fields": ["first_seen_at", "last_seen_at"]}),
        ("Wix JSON", {"fields": ["raw_json"], "classes": ["collapse"]}),
    ]

    # --- Columns ---

    @admin.display(description="tenant")
    def tenant_link(self, obj):
        url = reverse("admin:tenants_tenant_change", args=[obj.tenant_id])
        return format_html('<a href="{}">{}</a>', url, obj.tenant.name)

    @admin.display(description="schedule", ordering="schedule__name")
    def schedule_label(self, obj):
        return obj.schedule.label if obj.schedule else f"Not mirrored ({obj.schedule_wix_id})"

    @admin.display(description="provider", ordering="calendar_type")
    def provider_label(self, obj):
        return obj.provider.name if obj.provider else obj.get_calendar_type_display()

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        shown = badge(obj.status, obj.get_status_display())
        if obj.is_removed:
            return format_html("{} {}", shown, badge("removed", "Removed from Wix"))
        return shown

    @admin.display(description="import")
    def import_display(self, obj):
        return obj.describe_import().capitalize()

    @admin.display(description="export")
    def export_display(self, obj):
        return obj.describe_export().capitalize()

    # --- Pages ---

    def get_queryset(self, request):
        # What `str()` and the messages name, for autocomplete and actions alike.
        return super().get_queryset(request).select_related("tenant", "schedule", "provider")

    def get_search_results(self, request, queryset, search_term):
        # The whole text is one prefix, and each lookup one an index serves (see the models'
        # PrefixIndex). The four lookups are a union of row ids, not an OR: PostgreSQL cannot
        # combine indexes for an OR that reaches into other tables, and reads the whole table
        # instead, as `%text%` over the joined tables did, twice per search (page and count).
        term = search_term.strip()
        if len(term) > 1 and term[0] in "\"'" and term[-1] == term[0]:
            term = term[1:-1].strip()
        if not term:
            return queryset, False
        rows = Connection.objects.order_by().values("pk")
        schedules = Schedule.objects.order_by().filter(name__istartswith=term).values("pk")
        tenants = Tenant.objects.order_by().filter(name__istartswith=term).values("pk")
        matches = rows.filter(external_account_email__istartswith=term).union(
            rows.filter(wix_id__startswith=term),
            rows.filter(schedule__in=schedules),
            rows.filter(tenant__in=tenants),
            all=True,
        )
        return queryset.filter(pk__in=matches), False

    def get_urls(self):
        sync = path(
            "<path:object_id>/sync/",
            self.admin_site.admin_view(self.sync_view),
            name="connections_connection_sync",
        )
        act = path(
            "<path:object_id>/act/<str:action>/",
            self.admin_site.admin_view(self.object_action_view),
            name="connections_connection_act",
        )
        return [sync, act, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            changes = obj.changes.select_related("refresh_run").order_by("-changed_at", "-id")
            extra_context = {
                **(extra_context or {}),
                "changes": [(change, describe_change(change)) for change in changes[:50]],
                "changes_total": changes.count(),
                "changes_url": reverse("admin:connections_connectionchange_changelist")
                + f"?connection__id__exact={obj.pk}",
                **self._buttons(request, obj),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def _buttons(self, request, obj: Connection) -> dict:
        """The page's buttons: none for viewers; each only where its action makes sense."""
        if not access.can_act(request.user, obj.tenant_id):
            return {"can_act": False}

        def act_url(action: str) -> str:
            return reverse("admin:connections_connection_act", args=[obj.pk, action])

        return {
            "can_act": True,
            # Disconnected or gone from Wix: there is nothing left to disconnect.
            "disconnect_url": (
                act_url("disconnect")
                if obj.status != wix.Status.DISCONNECTED and not obj.is_removed
                else None
            ),
            "refresh_url": act_url("refresh"),
            "reconnect_url": act_url("reconnect_link") if reconnect_refusal(obj) is None else None,
            "sync_url": (
                reverse("admin:connections_connection_sync", args=[obj.pk])
                if not obj.sync_settings_fixed_reason()
                else None
            ),
        }

    # The list's actions a connection's page offers as buttons, each on that connection alone.
    OBJECT_ACTIONS = ("disconnect", "refresh", "reconnect_link")

    def object_action_view(self, request, object_id, action):
        """Run one of the list's actions on this connection: POST only, operators only.

        The action's own code runs, on a one-row queryset, so the rules, messages, audit
        and the disconnect confirmation are the list's; then back to the connection's page.
        """
        if action not in self.OBJECT_ACTIONS:
            raise Http404("No such action.")
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        connection = self.reach(request, object_id, act=True, action=action)
        func, _name, _description = self.get_actions(request)[action]
        response = func(self, request, self.get_queryset(request).filter(pk=connection.pk))
        change_url = reverse("admin:connections_connection_change", args=[connection.pk])
        if isinstance(response, TemplateResponse):
            # The disconnect confirmation posts back here; its Cancel link goes to the page,
            # since this URL answers POSTs only.
            response.context_data["cancel_url"] = change_url
            return response
        return HttpResponseRedirect(change_url)

    def sync_view(self, request, object_id):
        """Show and send a connection's sync settings; operators of its tenant only."""
        connection = self.reach(request, object_id, act=True)
        provider = connection.provider
        fixed_reason = connection.sync_settings_fixed_reason()
        form = None
        if not fixed_reason:
            calendars = self._calendars(request, connection, connection.sync_config)
            form = SyncSettingsForm(
                request.POST if request.method == "POST" else None,
                connection=connection,
                calendars=calendars,
            )
            if request.method == "POST" and form.is_valid():
                try:
                    row = connection_set_sync_config(
                        connection, form.sync_config(), user=request.user, via=Via.ADMIN
                    )
                except ActionRefused as refused:
                    form.add_refusal(refused)
                except WixError as exc:
                    self.message_user(
                        request,
                        f"Wix did not accept the sync settings: {describe_wix_error(exc)}",
                        messages.ERROR,
                    )
                else:
                    self.message_user(
                        request,
                        f"{name_of(row)}: sync settings saved. Import is {row.describe_import()};"
                        f" export is {row.describe_export()}.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(
                        reverse("admin:connections_connection_change", args=[connection.pk])
                    )
        elif request.method == "POST":
            self.message_user(request, "Nothing was changed.", messages.WARNING)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Sync settings",
            "subtitle": name_of(connection),
            "original": connection,
            "connection": connection,
            "provider": provider,
            "form": form,
            "not_editable_reason": fixed_reason,
            "import_now": connection.describe_import(),
            "export_now": connection.describe_export(),
            "change_url": reverse("admin:connections_connection_change", args=[connection.pk]),
        }
        return TemplateResponse(request, "admin/connections/connection/sync_settings.html", context)

    def _calendars(self, request, connection, current: wix.SyncConfig) -> list[wix.Calendar]:
        """The account's calendars from Wix, or the chosen ones when Wix fails."""
        chosen = list(current.list_event_from_calendars.calendars)
        if wix.ImportMode.CALENDARS not in connection.import_modes():
            return chosen
        try:
            return list(selectors.calendars_list(connection))
        except WixError as exc:
            self.message_user(
                request,
                f"Could not load the calendars from Wix: {describe_wix_error(exc)} "
                "Only the calendars already chosen can be kept.",
                messages.ERROR,
            )
            return chosen
