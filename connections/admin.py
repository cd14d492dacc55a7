"""Admin for the mirror: connections across tenants, their history, providers, schedules."""

from . import admin_connect_requests  # noqa: F401  (registers ConnectRequest)

# isort: split
import json
from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from common.badges import badge
from tenants import access
from tenants.admin_scoping import TenantScopedAdmin
from tenants.models import Tenant
from wixapi import types as wix
from wixapi.errors import WixError

from . import operations
from .forms import SyncSettingsForm
from .models import (
    ChangeKind,
    Connection,
    ConnectionChange,
    Provider,
    RefreshRun,
    Schedule,
)

# Each selected connection costs at least one Wix call, made while the page waits.
MAX_ACTION_ROWS = 100
DISCONNECT_EFFECT = (
    "Disconnecting stops the calendar sync: Wix deletes the bookings it exported to the "
    "external calendar and stops importing that calendar's events. The connection stays "
    "listed as Disconnected; to sync again, the calendar owner must connect again."
)


# --- Shared pieces ---------------------------------------------------------------------


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


def name_of(connection: Connection) -> str:
    """How a connection is named in messages: "Salon Aurora: Anna Lee (Google)"."""
    who = connection.schedule.label if connection.schedule else connection.schedule_wix_id[:8]
    kind = connection.provider.name if connection.provider else connection.calendar_type
    return f"{connection.tenant.name}: {who} ({kind or 'calendar'})"


wix_says = operations.describe_wix_error


def import_text(enabled: bool, mode: str | None, calendars: list[str]) -> str:
    if not enabled:
        return "off"
    if mode == wix.ImportMode.CALENDARS:
        return f"on, from {', '.join(calendars) or 'chosen calendars'}"
    return "on, from the primary calendar"


def export_text(enabled: bool, mode: str | None) -> str:
    if not enabled:
        return "off"
    if mode == wix.ExportMode.DEDICATED:
        return "on, to a dedicated calendar"
    return "on, to the primary calendar"


def describe_import(connection: Connection) -> str:
    names = [c.get("name") or c.get("id", "") for c in connection.import_calendars]
    return import_text(connection.import_enabled, connection.import_mode, names)


def describe_export(connection: Connection) -> str:
    return export_text(connection.export_enabled, connection.export_mode)


def describe_sync_json(value) -> str:
    """A syncConfig as Wix sent it, in words: "import off; export on, to ..."."""
    if not isinstance(value, dict):
        return "—"
    config = wix.SyncConfig.from_json(value)
    imp, exp = config.list_event_from_calendars, config.sync_to_calendar
    imported = import_text(imp.enabled, imp.mode, [c.name or c.id for c in imp.calendars])
    return f"import {imported}; export {export_text(exp.enabled, exp.mode)}"


def describe_change(change: ConnectionChange) -> str:
    """What a history entry says: "SYNCED → ERROR", "as SYNCED", "was ERROR"."""
    if change.kind == ChangeKind.CHANGED:
        if change.field == "sync_config":
            old, new = describe_sync_json(change.old_value), describe_sync_json(change.new_value)
        else:
            old, new = change.old_value or "—", change.new_value or "—"
        return f"{old} → {new}"
    if change.kind == ChangeKind.REMOVED:
        return f"was {change.old_value or '—'}"
    return f"as {change.new_value or '—'}"


def pretty_json(value) -> str:
    return format_html(
        '<pre class="portal-json">{}</pre>', json.dumps(value, indent=2, sort_keys=True)
    )


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


# --- Connections -----------------------------------------------------------------------


@admin.register(Connection)
class ConnectionAdmin(ReadOnlyMirrorAdmin):
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
    actions = [
        "disconnect",
        "enable_import",
        "disable_import",
        "enable_export",
        "disable_export",
        "refresh",
        "reconnect_link",
    ]
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

    @admin.display(description="tenant", ordering="tenant__name")
    def tenant_name(self, obj):
        return obj.tenant.name

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
        return describe_import(obj).capitalize()

    @admin.display(description="export")
    def export_display(self, obj):
        return describe_export(obj).capitalize()

    @admin.display(description="Wix JSON")
    def raw_json(self, obj):
        return pretty_json(obj.raw)

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
            "reconnect_url": (
                act_url("reconnect_link") if self._reconnect_refusal(obj) is None else None
            ),
            "sync_url": (
                reverse("admin:connections_connection_sync", args=[obj.pk])
                if not self._not_editable_reason(obj)
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
        editable = not self._not_editable_reason(connection)
        form = None
        if editable:
            calendars = self._calendars(request, connection, connection.sync_config)
            form = SyncSettingsForm(
                request.POST if request.method == "POST" else None,
                connection=connection,
                calendars=calendars,
            )
            if request.method == "POST" and form.is_valid():
                try:
                    row = operations.set_sync_config(
                        connection, form.sync_config(), user=request.user
                    )
                except operations.ActionRefused as refused:
                    form.add_refusal(refused)
                except WixError as exc:
                    self.message_user(
                        request,
                        f"Wix did not accept the sync settings: {wix_says(exc)}",
                        messages.ERROR,
                    )
                else:
                    self.message_user(
                        request,
                        f"{name_of(row)}: sync settings saved. Import is {describe_import(row)};"
                        f" export is {describe_export(row)}.",
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
            "not_editable_reason": self._not_editable_reason(connection),
            "import_now": describe_import(connection),
            "export_now": describe_export(connection),
            "change_url": reverse("admin:connections_connection_change", args=[connection.pk]),
        }
        return TemplateResponse(request, "admin/connections/connection/sync_settings.html", context)

    def _calendars(self, request, connection, current: wix.SyncConfig) -> list[wix.Calendar]:
        """The account's calendars from Wix, or the chosen ones when Wix fails."""
        chosen = list(current.list_event_from_calendars.calendars)
        if wix.ImportMode.CALENDARS not in operations.import_modes_for(connection):
            return chosen
        try:
            return list(operations.list_calendars(connection))
        except WixError as exc:
            self.message_user(
                request,
                f"Could not load the calendars from Wix: {wix_says(exc)} "
                "Only the calendars already chosen can be kept.",
                messages.ERROR,
            )
            return chosen

    @staticmethod
    def _not_editable_reason(connection: Connection) -> str:
        return operations.not_editable_reason(connection)

    # --- Actions ---

    def has_act_permission(self, request):
        return access.is_operator_anywhere(request.user)

    def _rows(self, request, queryset: QuerySet) -> list[Connection] | None:
        """The selection narrowed to the user's operable tenants, or None to stop."""
        queryset = self.operable(request, queryset).defer(None)
        rows = list(
            queryset.select_related("tenant__wix_app", "schedule", "provider")[
                : MAX_ACTION_ROWS + 1
            ]
        )
        if not rows:
            self.message_user(
                request,
                "No connection was changed: none of the selected ones is yours to act on.",
                messages.WARNING,
            )
            return None
        if len(rows) > MAX_ACTION_ROWS:
            self.message_user(
                request,
                f"Select at most {MAX_ACTION_ROWS} connections at a time; "
                "each one is a call to Wix. Nothing was changed.",
                messages.ERROR,
            )
            return None
        return rows

    def _each(
        self,
        request,
        rows: list[Connection],
        verb: Callable[[Connection], Connection],
        done: Callable[[Connection], str],
        failed: str,
    ) -> None:
        """Run `verb` per row; one message per row: `done(row)` or why it failed."""
        for connection in rows:
            name = name_of(connection)
            try:
                row = verb(connection)
            except operations.ActionRefused as refused:
                self.message_user(request, f"{name}: {failed}. {refused.message}", messages.WARNING)
            except WixError as exc:
                self.message_user(request, f"{name}: {failed}. {wix_says(exc)}", messages.ERROR)
            else:
                self.message_user(request, f"{name}: {done(row)}.", messages.SUCCESS)

    @admin.action(description="Disconnect the selected connections…", permissions=["act"])
    def disconnect(self, request, queryset):
        rows = self._rows(request, queryset)
        if rows is None:
            return None
        if request.POST.get("post") != "yes":
            return TemplateResponse(
                request,
                "admin/connections/connection/disconnect_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.opts,
                    "title": "Disconnect calendars?",
                    "rows": [(row, name_of(row)) for row in rows],
                    "effect": DISCONNECT_EFFECT,
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                    "cancel_url": request.get_full_path(),
                },
            )
        self._each(
            request,
            rows,
            lambda c: operations.disconnect(c, user=request.user),
            lambda row: f"disconnected; Wix shows it as {row.get_status_display()}",
            "not disconnected",
        )
        return None

    def _set_direction(self, request, queryset, direction: str, enabled: bool) -> None:
        rows = self._rows(request, queryset)
        if rows is None:
            return
        describe = describe_import if direction == "import" else describe_export
        self._each(
            request,
            rows,
            lambda c: operations.set_direction(
                c, direction=direction, enabled=enabled, user=request.user
            ),
            lambda row: f"{direction} is now {describe(row)}",
            f"{direction} not changed",
        )

    @admin.action(description="Turn import on", permissions=["act"])
    def enable_import(self, request, queryset):
        self._set_direction(request, queryset, "import", True)

    @admin.action(description="Turn import off", permissions=["act"])
    def disable_import(self, request, queryset):
        self._set_direction(request, queryset, "import", False)

    @admin.action(description="Turn export on", permissions=["act"])
    def enable_export(self, request, queryset):
        self._set_direction(request, queryset, "export", True)

    @admin.action(description="Turn export off", permissions=["act"])
    def disable_export(self, request, queryset):
        self._set_direction(request, queryset, "export", False)

    @admin.action(description="Refresh from Wix", permissions=["act"])
    def refresh(self, request, queryset):
        rows = self._rows(request, queryset)
        if rows is None:
            return
        self._each(
            request,
            rows,
            lambda c: operations.refresh_connection(c, user=request.user),
            lambda row: f"refreshed from Wix; status {row.get_status_display()}",
            "not refreshed",
        )

    @admin.action(description="Get a reconnect link for broken connections", permissions=["act"])
    def reconnect_link(self, request, queryset):
        rows = self._rows(request, queryset)
        if rows is None:
            return
        for connection in rows:
            self._reconnect(request, connection)

    @staticmethod
    def _reconnect_refusal(connection: Connection) -> tuple[str, int] | None:
        """Why no reconnect link is offered for `connection`, and how loudly; None if one is.

        The action says it per row; the connection's page shows its button only on None.
        """
        name = name_of(connection)
        provider, schedule = connection.provider, connection.schedule
        if connection.status not in (wix.Status.ERROR, wix.Status.DISCONNECTED):
            return (
                f"{name}: not broken ({connection.get_status_display()}); nothing to reconnect.",
                messages.INFO,
            )
        if provider is None or schedule is None:
            return (
                f"{name}: its provider or schedule is not mirrored yet; refresh the tenant first.",
                messages.WARNING,
            )
        if not provider.supports(wix.ConnectMethod.OAUTH):
            return (
                format_html(
                    '{}: {} connects with an email and password, not a link; use the <a href="{}">'
                    "Connect page of {}</a>.",
                    name,
                    provider,
                    reverse("admin:tenants_tenant_connect", args=[connection.tenant_id]),
                    connection.tenant.name,
                ),
                messages.INFO,
            )
        return None

    def _reconnect(self, request, connection: Connection) -> None:
        name = name_of(connection)
        provider, schedule = connection.provider, connection.schedule
        refusal = self._reconnect_refusal(connection)
        if refusal is not None:
            self.message_user(request, *refusal)
            return
        try:
            started = operations.start_oauth_connect(
                tenant=connection.tenant,
                schedule=schedule,
                provider=provider,
                return_url=lambda state: request.build_absolute_uri(
                    reverse("oauth-return", args=[state])
                ),
                user=request.user,
            )
        except operations.ActionRefused as refused:
            self.message_user(request, f"{name}: no link. {refused.message}", messages.WARNING)
        except WixError as exc:
            self.message_user(request, f"{name}: no link. {wix_says(exc)}", messages.ERROR)
        else:
            self.message_user(
                request,
                format_html(
                    "{}: send this link to the calendar owner to reconnect (valid for {} hours): "
                    '<a href="{}">{}</a>',
                    name,
                    int(operations.CONNECT_REQUEST_LIFETIME.total_seconds() // 3600),
                    started.oauth_url,
                    started.oauth_url,
                ),
                messages.SUCCESS,
            )


# --- The other mirror rows -------------------------------------------------------------


@admin.register(Provider)
class ProviderAdmin(ReadOnlyMirrorAdmin):
    list_display = [
        "name",
        "tenant_name",
        "calendar_type",
        "methods",
        "import_capability",
        "export_capability",
        "can_update_sync_config",
        "last_seen_at",
    ]
    list_filter = ["tenant", "calendar_type", "can_update_sync_config", RemovedFilter]
    search_fields = ["name", "tenant__name", "^wix_id"]
    list_select_related = ["tenant"]
    ordering = ["-id"]
    fieldsets = [
        (None, {"fields": ["tenant", "name", "calendar_type", "wix_id"]}),
        (
            "What it can do",
            {
                "fields": [
                    "methods",
                    "import_capability",
                    "export_capability",
                    "can_update_sync_config",
                ]
            },
        ),
        ("Mirror", {"fields": ["first_seen_at", "last_seen_at", "removed_at"]}),
        ("Wix JSON", {"fields": ["raw_json"], "classes": ["collapse"]}),
    ]

    @admin.display(description="tenant", ordering="tenant__name")
    def tenant_name(self, obj):
        return obj.tenant.name

    @admin.display(description="connect methods")
    def methods(self, obj):
        return ", ".join(obj.connect_methods) or "—"

    @admin.display(description="Wix JSON")
    def raw_json(self, obj):
        return pretty_json(obj.raw)


@admin.register(Schedule)
class ScheduleAdmin(ReadOnlyMirrorAdmin):
    list_display = ["label", "tenant_name", "status", "time_zone", "wix_id", "last_seen_at"]
    list_filter = ["tenant", "status", RemovedFilter]
    search_fields = ["name", "default_title", "tenant__name", "^wix_id"]
    list_select_related = ["tenant"]
    ordering = ["-id"]
    fieldsets = [
        (None, {"fields": ["tenant", "label", "name", "default_title", "status", "time_zone"]}),
        ("Wix IDs", {"fields": ["wix_id", "external_id", "app_id"]}),
        ("Mirror", {"fields": ["first_seen_at", "last_seen_at", "removed_at"]}),
        ("Wix JSON", {"fields": ["raw_json"], "classes": ["collapse"]}),
    ]

    @admin.display(description="schedule", ordering="name")
    def label(self, obj):
        return obj.label

    @admin.display(description="tenant", ordering="tenant__name")
    def tenant_name(self, obj):
        return obj.tenant.name

    @admin.display(description="Wix JSON")
    def raw_json(self, obj):
        return pretty_json(obj.raw)


@admin.register(RefreshRun)
class RefreshRunAdmin(ReadOnlyMirrorAdmin):
    list_display = [
        "started_at",
        "tenant_name",
        "trigger",
        "outcome_badge",
        "counts",
        "error",
        "failed_providers_count",
        "duration_display",
        "wix_calls",
    ]
    list_display_links = ["started_at"]
    list_filter = ["tenant", "outcome", "trigger"]
    search_fields = ["tenant__name", "error_code", "wix_request_id"]
    list_select_related = ["tenant"]
    # The primary key follows `started_at` and is indexed.
    ordering = ["-id"]
    fieldsets = [
        (None, {"fields": ["tenant", "trigger", "outcome_badge", "started_at", "finished_at"]}),
        (
            "What changed",
            {
                "fields": [
                    "new_count",
                    "changed_count",
                    "unchanged_count",
                    "removed_count",
                    "wix_calls",
                    "duration_display",
                ]
            },
        ),
        (
            "Failures",
            {
                "fields": [
                    "error_code",
                    "error_message",
                    "wix_request_id",
                    "failed_providers",
                ]
            },
        ),
    ]

    @admin.display(description="tenant", ordering="tenant__name")
    def tenant_name(self, obj):
        return obj.tenant.name

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, obj):
        return badge(obj.outcome, obj.get_outcome_display())

    @admin.display(description="new / changed / unchanged / removed")
    def counts(self, obj):
        return (
            f"{obj.new_count} / {obj.changed_count} / {obj.unchanged_count} / {obj.removed_count}"
        )

    @admin.display(description="error")
    def error(self, obj):
        if not obj.error_code:
            return "—"
        return f"{obj.error_code}: {obj.error_message[:120]}"

    @admin.display(description="failed providers")
    def failed_providers_count(self, obj):
        return len(obj.failed_provider_ids) or "—"

    @admin.display(description="failed providers")
    def failed_providers(self, obj):
        if not obj.failed_provider_ids:
            return "—"
        names = dict(
            Provider.objects.filter(
                tenant_id=obj.tenant_id, wix_id__in=obj.failed_provider_ids
            ).values_list("wix_id", "name")
        )
        return format_html_join(
            ", ", "{} ({})", ((names.get(i, "unknown"), i) for i in obj.failed_provider_ids)
        )

    @admin.display(description="duration")
    def duration_display(self, obj):
        duration = obj.duration
        return f"{duration.total_seconds():.1f} s" if duration is not None else "—"


@admin.register(ConnectionChange)
class ConnectionChangeAdmin(ReadOnlyMirrorAdmin):
    list_display = [
        "changed_at",
        "tenant_name",
        "connection_link",
        "kind",
        "field",
        "old_to_new",
        "refresh_run_link",
    ]
    list_display_links = ["changed_at"]
    list_filter = ["tenant", "kind", "field"]
    search_fields = [
        "connection__external_account_email",
        "connection__schedule__name",
        "tenant__name",
        "^connection__wix_id",
    ]
    list_select_related = ["tenant", "connection__tenant", "connection__schedule", "refresh_run"]
    ordering = ["-id"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "tenant",
                    "connection_link",
                    "changed_at",
                    "kind",
                    "field",
                    "refresh_run_link",
                ]
            },
        ),
        ("Values", {"fields": ["old_json", "new_json"]}),
    ]

    def lookup_allowed(self, lookup, value, request=None):
        # The connection page links here for its full history; rows stay tenant-scoped.
        return lookup == "connection__id__exact" or super().lookup_allowed(lookup, value, request)

    @admin.display(description="tenant", ordering="tenant__name")
    def tenant_name(self, obj):
        return obj.tenant.name

    @admin.display(description="connection")
    def connection_link(self, obj):
        url = reverse("admin:connections_connection_change", args=[obj.connection_id])
        return format_html('<a href="{}">{}</a>', url, obj.connection)

    @admin.display(description="old → new")
    def old_to_new(self, obj):
        return describe_change(obj)

    @admin.display(description="refresh run")
    def refresh_run_link(self, obj):
        if obj.refresh_run_id is None:
            return "An action in the portal"
        url = reverse("admin:connections_refreshrun_change", args=[obj.refresh_run_id])
        started = obj.refresh_run.started_at.strftime("%Y-%m-%d %H:%M")
        return format_html('<a href="{}">Refresh of {}</a>', url, started)

    @admin.display(description="old value")
    def old_json(self, obj):
        return pretty_json(obj.old_value)

    @admin.display(description="new value")
    def new_json(self, obj):
        return pretty_json(obj.new_value)
