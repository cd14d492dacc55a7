"""What staff do to one connection: refresh it, disconnect it, change its sync settings,
get a link to reconnect it.

Each verb asks Wix, then mirrors Wix's answer and audits it in one transaction, with Wix's
request id and what changed; a Wix failure is audited and raised, the mirror left as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction

from tenants import audit
from tenants.models import AuditAction, Via
from wixapi import types as wix
from wixapi.client import WixClient
from wixapi.errors import WixApiError

from ..models import BROKEN_STATUSES, Connection
from .common import client_for, connection_changes, failure_audited
from .connect import StartedConnect, oauth_connect_start
from .errors import ActionRefused
from .refresh import mirror_connections

# Why `reconnect_refusal` refuses, for interfaces that word each their own way.
NOT_BROKEN = "not_broken"
NOT_MIRRORED = "not_mirrored"
NO_OAUTH = "no_oauth"


def connection_refresh(connection: Connection, *, user, via: Via) -> Connection:
    """Read the connection from Wix (Get Connection), mirror and audit it; return the row."""
    with _failure_audited(AuditAction.REFRESH_CONNECTION, connection, user=user, via=via):
        client = client_for(connection.tenant)
        answer = client.get_connection(connection.wix_id)
    return _mirrored(AuditAction.REFRESH_CONNECTION, connection, answer, client, user, via)


def connection_disconnect(connection: Connection, *, user, via: Via) -> Connection:
    """Disconnect the connection in Wix, mirror and audit Wix's answer; return the row.

    A connection Wix already has as disconnected counts as done (docs/wix-contract.md §1.8).
    """
    with _failure_audited(AuditAction.DISCONNECT, connection, user=user, via=via):
        client = client_for(connection.tenant)
        try:
            answer = client.disconnect(connection.wix_id)
        except WixApiError as exc:
            if exc.code != "CONNECTION_ALREADY_DISCONNECTED":
                raise
            answer = client.get_connection(connection.wix_id)
    return _mirrored(AuditAction.DISCONNECT, connection, answer, client, user, via)


def connection_set_sync_config(
    connection: Connection, sync_config: wix.SyncConfig, *, user, via: Via
) -> Connection:
    """Send the complete sync config to Wix, mirror and audit the answer; return the row.

    Raises `ActionRefused` (audited) when the provider cannot do what is asked.
    """
    parameters = {"syncConfig": sync_config.to_json()}
    with _failure_audited(
        AuditAction.SET_SYNC_CONFIG, connection, user=user, via=via, parameters=parameters
    ):
        check_sync_config(connection, sync_config)
        client = client_for(connection.tenant)
        answer = client.update_sync_config(connection.wix_id, sync_config=sync_config)
    return _mirrored(AuditAction.SET_SYNC_CONFIG, connection, answer, client, user, via, parameters)


def connection_set_direction(
    connection: Connection, *, direction: str, enabled: bool, user, via: Via
) -> Connection:
    """Turn import ("import") or export ("export") on or off, keeping the rest as it is:
    `connection_set_sync_config` with the whole config."""
    current = connection.sync_config
    provider = connection.provider
    if direction == "import":
        imp = current.list_event_from_calendars
        mode = imp.mode or (provider.default_import_mode() if provider else None)
        wanted = wix.SyncConfig(
            list_event_from_calendars=wix.ImportConfig(
                enabled=enabled, mode=mode, calendars=imp.calendars
            ),
            sync_to_calendar=current.sync_to_calendar,
        )
    elif direction == "export":
        mode = current.sync_to_calendar.mode or (
            provider.default_export_mode() if provider else None
        )
        wanted = wix.SyncConfig(
            list_event_from_calendars=current.list_event_from_calendars,
            sync_to_calendar=wix.ExportConfig(enabled=enabled, mode=mode),
        )
    else:
        raise ValueError(f"direction is 'import' or 'export', not {direction!r}")
    return connection_set_sync_config(connection, wanted, user=user, via=via)


def connection_reconnect_link(
    connection: Connection, *, return_url: Callable[[str], str], user, via: Via
) -> StartedConnect:
    """An OAuth link for the calendar owner to connect the broken connection's schedule to
    its provider again (`oauth_connect_start`, audited as START_OAUTH_CONNECT).

    Raises `reconnect_refusal`'s `ActionRefused` (not audited: nothing was asked), and Wix's
    errors (audited).
    """
    refusal = reconnect_refusal(connection)
    if refusal is not None:
        raise refusal
    return oauth_connect_start(
        tenant=connection.tenant,
        schedule=connection.schedule,
        provider=connection.provider,
        return_url=return_url,
        user=user,
        via=via,
        reconnecting=connection,
    )


def reconnect_refusal(connection: Connection) -> ActionRefused | None:
    """Why no reconnect link can be made for the connection, or None when one can: it is
    not broken (ERROR or DISCONNECTED), its provider or schedule is not mirrored, or its
    provider has no OAuth. The message follows the connection's name ("…: not broken")."""
    provider, schedule = connection.provider, connection.schedule
    if connection.status not in BROKEN_STATUSES:
        return ActionRefused(
            f"not broken ({connection.get_status_display()}); nothing to reconnect.",
            code=NOT_BROKEN,
        )
    if provider is None or schedule is None:
        return ActionRefused(
            "its provider or schedule is not mirrored yet; refresh the tenant first.",
            code=NOT_MIRRORED,
        )
    if not provider.supports(wix.ConnectMethod.OAUTH):
        return ActionRefused(
            f"{provider} connects with an email and password, not a link; connect it on "
            "the tenant's Connect page.",
            field="provider",
            code=NO_OAUTH,
        )
    return None


def check_sync_config(connection: Connection, sync_config: wix.SyncConfig) -> None:
    """Raise `ActionRefused` naming the first change the provider cannot do.

    Only what differs from the connection's current config is checked: a direction sent
    back as it is passes, even when the provider's features do not list its mode (Wix made
    it so), and the modes the connection has count as possible.
    """
    provider = connection.provider
    if provider is None:
        raise ActionRefused("The connection's provider is not mirrored yet; refresh first.")
    if not provider.can_update_sync_config:
        raise ActionRefused(f"{provider} does not allow changing sync settings.")
    current = connection.sync_config
    imp = sync_config.list_event_from_calendars
    if imp.enabled and _target(imp) != _target(current.list_event_from_calendars):
        if imp.mode not in connection.import_modes():
            modes = provider.import_modes()
            if not modes:
                raise ActionRefused(f"{provider} cannot import events.", field="import")
            raise ActionRefused(
                f"{provider} can import only from: {', '.join(sorted(modes))}.", field="import"
            )
        if imp.mode is wix.ImportMode.CALENDARS and not imp.calendars:
            raise ActionRefused("Choose at least one calendar to import from.", field="calendars")
    exp = sync_config.sync_to_calendar
    if (
        exp.enabled
        and _target(exp) != _target(current.sync_to_calendar)
        and exp.mode not in connection.export_modes()
    ):
        modes = provider.export_modes()
        if not modes:
            raise ActionRefused(f"{provider} cannot export bookings.", field="export")
        raise ActionRefused(
            f"{provider} can export only to: {', '.join(sorted(modes))}.", field="export"
        )


def _target(part: wix.ImportConfig | wix.ExportConfig) -> tuple:
    """What a direction asks Wix for: on or off, the mode, the calendar ids."""
    calendars = tuple(c.id for c in getattr(part, "calendars", ()))
    return part.enabled, part.mode, calendars


def _failure_audited(
    action: AuditAction,
    connection: Connection,
    *,
    user,
    via: Via,
    parameters: dict[str, Any] | None = None,
):
    return failure_audited(
        action,
        user=user,
        via=via,
        tenant=connection.tenant,
        target=connection,
        parameters=parameters,
    )


def _mirrored(
    action: AuditAction,
    connection: Connection,
    answer: wix.Connection,
    client: WixClient,
    user,
    via: Via,
    parameters: dict[str, Any] | None = None,
) -> Connection:
    """Mirror Wix's answer and audit the verb, with what changed and Wix's request id, in
    one transaction; return the row."""
    with transaction.atomic():
        row = mirror_connections(connection.tenant, [answer])[0]
        audit.record(
            action,
            user=user,
            via=via,
            tenant=row.tenant,
            target=row,
            parameters=parameters,
            changes=connection_changes(connection, row),
            wix_request_id=client.last_request_id,
        )
    return row
