"""The connection list's actions: each a loop over the selection, one service call and one
message per connection."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from tenants import access
from tenants.models import Via
from wixapi.errors import WixError

from .. import messages as words
from ..messages import describe_wix_error, name_of
from ..models import Connection
from ..services.actions import (
    NO_OAUTH,
    NOT_BROKEN,
    NOT_MIRRORED,
    connection_disconnect,
    connection_reconnect_link,
    connection_refresh,
    connection_set_direction,
)
from ..services.connect import CONNECT_REQUEST_LIFETIME
from ..services.errors import ActionRefused
from ..views import oauth_return_url

# Each selected connection costs at least one Wix call, made while the page waits.
MAX_ACTION_ROWS = 100
DISCONNECT_EFFECT = (
    "Disconnecting stops the calendar sync: Wix deletes the bookings it exported to the "
    "external calendar and stops importing that calendar's events. The connection stays "
    "listed as Disconnected; to sync again, the calendar owner must connect again."
)
# How loudly the list says why a connection gets no reconnect link.
RECONNECT_REFUSAL_LEVELS = {NOT_BROKEN: messages.INFO, NOT_MIRRORED: messages.WARNING}


class ConnectionActions:
    """Mixed into ConnectionAdmin: its actions, for operators of the connections' tenants."""

    actions = [
        "disconnect",
        "enable_import",
        "disable_import",
        "enable_export",
        "disable_export",
        "refresh",
        "reconnect_link",
    ]

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
        queryset: QuerySet,
        verb: Callable[..., Connection],
        done: Callable[[Connection], str],
        failed: str,
    ) -> None:
        """Run `verb` per selected row, as the user, via the admin; one message per row:
        `done(row)` or why it failed."""
        rows = self._rows(request, queryset)
        for connection in rows or ():
            name = name_of(connection)
            try:
                row = verb(connection, user=request.user, via=Via.ADMIN)
            except ActionRefused as refused:
                self.message_user(request, f"{name}: {failed}. {refused.message}", messages.WARNING)
            except WixError as exc:
                self.message_user(
                    request, f"{name}: {failed}. {describe_wix_error(exc)}", messages.ERROR
                )
            else:
                self.message_user(request, f"{name}: {done(row)}.", messages.SUCCESS)

    @admin.action(description="Disconnect the selected connections…", permissions=["act"])
    def disconnect(self, request, queryset):
        if request.POST.get("post") == "yes":
            self._each(
                request,
                queryset,
                connection_disconnect,
                words.disconnected,
                words.NOT_DISCONNECTED,
            )
            return None
        rows = self._rows(request, queryset)
        if rows is None:
            return None
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

    def _set_direction(self, request, queryset, direction: str, enabled: bool) -> None:
        self._each(
            request,
            queryset,
            partial(connection_set_direction, direction=direction, enabled=enabled),
            partial(words.direction_set, direction),
            words.direction_not_set(direction),
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
        self._each(request, queryset, connection_refresh, words.refreshed, words.NOT_REFRESHED)

    @admin.action(description="Get a reconnect link for broken connections", permissions=["act"])
    def reconnect_link(self, request, queryset):
        for connection in self._rows(request, queryset) or ():
            name = name_of(connection)
            try:
                started = connection_reconnect_link(
                    connection,
                    return_url=partial(oauth_return_url, request),
                    user=request.user,
                    via=Via.ADMIN,
                )
            except ActionRefused as refused:
                self.message_user(request, *self._refusal(name, connection, refused))
            except WixError as exc:
                self.message_user(
                    request, f"{name}: {words.NO_LINK}. {describe_wix_error(exc)}", messages.ERROR
                )
            else:
                self.message_user(
                    request,
                    format_html(
                        "{}: send this link to the calendar owner to reconnect (valid for {} "
                        'hours): <a href="{}">{}</a>',
                        name,
                        int(CONNECT_REQUEST_LIFETIME.total_seconds() // 3600),
                        started.oauth_url,
                        started.oauth_url,
                    ),
                    messages.SUCCESS,
                )

    @staticmethod
    def _refusal(name: str, connection: Connection, refused: ActionRefused) -> tuple[str, int]:
        """The message, and its level, of a connection the reconnect rules give no link."""
        if refused.code == NO_OAUTH:
            return (
                format_html(
                    '{}: {} connects with an email and password, not a link; use the <a href="{}">'
                    "Connect page of {}</a>.",
                    name,
                    connection.provider,
                    reverse("admin:tenants_tenant_connect", args=[connection.tenant_id]),
                    connection.tenant.name,
                ),
                messages.INFO,
            )
        if refused.code in RECONNECT_REFUSAL_LEVELS:
            return f"{name}: {refused.message}", RECONNECT_REFUSAL_LEVELS[refused.code]
        return f"{name}: {words.NO_LINK}. {refused.message}", messages.WARNING
