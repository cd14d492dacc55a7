"""What staff do to connections: each verb calls Wix, then mirrors Wix's answer, and audits.

Shared by the admin and the API, so both apply the same rules. A Wix failure is audited
and raised as the `WixError` it was; the mirror is left as it was.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from tenants import audit
from tenants.crypto import DecryptionError
from tenants.models import CREDENTIALS_UNREADABLE, AuditOutcome, Tenant
from tenants.wix import client_for as _client_for
from wixapi import types as wix
from wixapi.client import WixClient
from wixapi.errors import WixApiError, WixError

from . import services
from .models import (
    Connection,
    ConnectMethodChoice,
    ConnectRequest,
    ConnectRequestStatus,
    Provider,
    Schedule,
)

# How long an OAuth link stays usable; Wix's consent is interactive, so hours, not days.
CONNECT_REQUEST_LIFETIME = timedelta(hours=24)
# A listing of events stops here rather than page through a runaway window.
MAX_EVENTS = 5000
# Wix's answers to a refused OAuth consent, in words a calendar owner understands.
OAUTH_ERRORS = {
    "reject": "The calendar owner declined access.",
    "unsupported": "This kind of calendar account is not supported by the provider.",
    "internal": "Wix could not complete the connection. Please try again later.",
    "wrong_connection": "This link was answered with another calendar connection than the "
    "one it asked for, so nothing was connected.",
}
WRONG_CONNECTION = "wrong_connection"


class ActionRefused(Exception):
    """The action is not possible for this connection (the provider cannot, or a bad input)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def client_for(tenant: Tenant) -> WixClient:
    """The tenant's Wix client; a secret that no key decrypts refuses the action."""
    try:
        return _client_for(tenant)
    except DecryptionError:
        raise ActionRefused(CREDENTIALS_UNREADABLE) from None


def _audited(
    action: str,
    *,
    user,
    tenant: Tenant,
    target: Any,
    parameters: dict[str, Any] | None = None,
    via: str,
    call: Callable[[], Any],
) -> Any:
    """Run `call`, then record the outcome; re-raise what it raised."""

    def record(error: Exception | None) -> None:
        audit.record(
            user=user,
            action=action,
            tenant=tenant,
            target=target,
            parameters=parameters,
            outcome=AuditOutcome.FAILED if error else AuditOutcome.OK,
            error=error,
            via=via,
        )

    try:
        result = call()
    except (WixError, ActionRefused) as exc:
        record(exc)
        raise
    record(None)
    return result


# --- Single connections ---------------------------------------------------------------


def _act_on_connection(
    connection: Connection,
    action: str,
    ask: Callable[[WixClient], wix.Connection],
    *,
    user,
    via: str,
    parameters: dict[str, Any] | None = None,
    check: Callable[[], None] | None = None,
) -> Connection:
    """Ask Wix (after `check`, if any), mirror its answer, audit; return the row."""

    def call() -> Connection:
        if check is not None:
            check()
        answer = ask(client_for(connection.tenant))
        return services.mirror_connections(connection.tenant, [answer])[0]

    return _audited(
        action,
        user=user,
        tenant=connection.tenant,
        target=connection,
        parameters=parameters,
        via=via,
        call=call,
    )


def refresh_connection(connection: Connection, *, user, via: str = "admin") -> Connection:
    """Fetch the connection from Wix (Get Connection) and mirror it; return the row."""
    return _act_on_connection(
        connection,
        "refresh_connection",
        lambda client: client.get_connection(connection.wix_id),
        user=user,
        via=via,
    )


def disconnect(connection: Connection, *, user, via: str = "admin") -> Connection:
    """Disconnect the connection in Wix and mirror the result; return the row.

    A connection Wix already has as disconnected counts as done (docs/wix-contract.md §1.8).
    """

    def ask(client: WixClient) -> wix.Connection:
        try:
            return client.disconnect(connection.wix_id)
        except WixApiError as exc:
            if exc.code != "CONNECTION_ALREADY_DISCONNECTED":
                raise
            return client.get_connection(connection.wix_id)

    return _act_on_connection(connection, "disconnect", ask, user=user, via=via)


def set_sync_config(
    connection: Connection, sync_config: wix.SyncConfig, *, user, via: str = "admin"
) -> Connection:
    """Send the complete sync config to Wix and mirror the answer; return the row.

    Raises `ActionRefused` when the provider cannot do what is asked.
    """
    return _act_on_connection(
        connection,
        "set_sync_config",
        lambda client: client.update_sync_config(connection.wix_id, sync_config=sync_config),
        user=user,
        via=via,
        parameters={"syncConfig": sync_config.to_json()},
        check=lambda: check_sync_config(connection, sync_config),
    )


def set_direction(
    connection: Connection, *, direction: str, enabled: bool, user, via: str = "admin"
) -> Connection:
    """Turn import ("import") or export ("export") on or off, keeping the rest as it is."""
    current = connection.sync_config
    if direction == "import":
        mode = current.list_event_from_calendars.mode or default_import_mode(connection.provider)
        wanted = wix.SyncConfig(
            list_event_from_calendars=wix.ImportConfig(
                enabled=enabled, mode=mode, calendars=current.list_event_from_calendars.calendars
            ),
            sync_to_calendar=current.sync_to_calendar,
        )
    elif direction == "export":
        mode = current.sync_to_calendar.mode or default_export_mode(connection.provider)
        wanted = wix.SyncConfig(
            list_event_from_calendars=current.list_event_from_calendars,
            sync_to_calendar=wix.ExportConfig(enabled=enabled, mode=mode),
        )
    else:
        raise ValueError(f"direction is 'import' or 'export', not {direction!r}")
    return set_sync_config(connection, wanted, user=user, via=via)


def list_calendars(connection: Connection) -> tuple[wix.Calendar, ...]:
    """Return the calendars of the connection's external account (read-only, not audited)."""
    return client_for(connection.tenant).list_calendars(connection.wix_id)


# --- Capabilities ----------------------------------------------------------------------

IMPORT_MODES = {
    wix.ListEventFromCalendars.PRIMARY_CALENDAR_ONLY.value: {wix.ImportMode.PRIMARY},
    wix.ListEventFromCalendars.SPECIFIC_CALENDARS.value: {
        wix.ImportMode.PRIMARY,
        wix.ImportMode.CALENDARS,
    },
}
EXPORT_MODES = {
    wix.SyncToCalendar.PRIMARY_CALENDAR_ONLY.value: {wix.ExportMode.PRIMARY},
    # Wix has no field to pick a specific export calendar (docs/wix-contract.md §1): the primary it
    # is.
    wix.SyncToCalendar.SPECIFIC_CALENDAR.value: {wix.ExportMode.PRIMARY},
    wix.SyncToCalendar.DEDICATED_CALENDAR.value: {wix.ExportMode.DEDICATED},
}


# [U] chosen: a capability the portal cannot read (UNDEFINED, or a value it does not know) is
# no reason to refuse: every mode is offered and Wix answers (428 NOT_SUPPORTED_BY_PROVIDER).
UNSURE_CAPABILITIES = {"", wix.ListEventFromCalendars.UNDEFINED.value}


def allowed_import_modes(provider: Provider | None) -> set[wix.ImportMode]:
    """The import modes the provider's features list (all of them when they are unsure)."""
    if provider is None:
        return set()
    if provider.import_capability in UNSURE_CAPABILITIES:
        return set(wix.ImportMode)
    return set(IMPORT_MODES.get(provider.import_capability, set()))


def allowed_export_modes(provider: Provider | None) -> set[wix.ExportMode]:
    """The export modes the provider's features list (all of them when they are unsure)."""
    if provider is None:
        return set()
    if provider.export_capability in UNSURE_CAPABILITIES:
        return set(wix.ExportMode)
    return set(EXPORT_MODES.get(provider.export_capability, set()))


def _has_mode(part: wix.ImportConfig | wix.ExportConfig, capability: str) -> bool:
    # A disabled part still names a target (Wix's one-of); on a provider that says it cannot
    # do the direction at all, that name is a placeholder, not something to turn on.
    return part.mode is not None and (part.enabled or capability != "NOT_SUPPORTED")


def import_modes_for(connection: Connection) -> set[wix.ImportMode]:
    """The import modes to offer: the provider's, and the one the connection already has."""
    modes = allowed_import_modes(connection.provider)
    imp = connection.sync_config.list_event_from_calendars
    if connection.provider and _has_mode(imp, connection.provider.import_capability):
        modes.add(imp.mode)
    return modes


def export_modes_for(connection: Connection) -> set[wix.ExportMode]:
    """The export modes to offer: the provider's, and the one the connection already has."""
    modes = allowed_export_modes(connection.provider)
    exp = connection.sync_config.sync_to_calendar
    if connection.provider and _has_mode(exp, connection.provider.export_capability):
        modes.add(exp.mode)
    return modes


def default_import_mode(provider: Provider | None) -> wix.ImportMode | None:
    return wix.ImportMode.PRIMARY if allowed_import_modes(provider) else None


def default_export_mode(provider: Provider | None) -> wix.ExportMode | None:
    modes = allowed_export_modes(provider)
    for mode in (wix.ExportMode.DEDICATED, wix.ExportMode.PRIMARY):
        if mode in modes:
            return mode
    return None


def not_editable_reason(connection: Connection) -> str:
    """Why the connection's sync settings cannot be changed at all, or "" when they can."""
    provider = connection.provider
    if provider is None:
        return "The connection's provider is not mirrored yet; refresh the tenant first."
    if not provider.can_update_sync_config:
        return (
            f"{provider} does not allow changing sync settings; the connection keeps "
            "the settings it was made with."
        )
    return ""


def _target(part: wix.ImportConfig | wix.ExportConfig) -> tuple:
    """What a direction asks Wix for: on or off, the mode, the calendar ids."""
    calendars = tuple(c.id for c in getattr(part, "calendars", ()))
    return part.enabled, part.mode, calendars


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
        if imp.mode not in import_modes_for(connection):
            modes = allowed_import_modes(provider)
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
        and exp.mode not in export_modes_for(connection)
    ):
        modes = allowed_export_modes(provider)
        if not modes:
            raise ActionRefused(f"{provider} cannot export bookings.", field="export")
        raise ActionRefused(
            f"{provider} can export only to: {', '.join(sorted(modes))}.", field="export"
        )


# --- Connecting ------------------------------------------------------------------------


def _hash_state(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class StartedConnect:
    request: ConnectRequest
    oauth_url: str
    # The single-use token in the return URL; shown nowhere, kept only as a hash.
    state: str = field(repr=False)


def start_oauth_connect(
    *,
    tenant: Tenant,
    schedule: Schedule,
    provider: Provider,
    return_url: Callable[[str], str],
    user,
    via: str = "admin",
) -> StartedConnect:
    """Ask Wix for an OAuth link for the schedule and track it as a ConnectRequest.

    `return_url(state)` builds the absolute URL the owner comes back to.
    """
    if schedule.tenant_id != tenant.pk or provider.tenant_id != tenant.pk:
        raise ActionRefused("The schedule and provider must belong to the tenant.")
    if not provider.supports(wix.ConnectMethod.OAUTH):
        raise ActionRefused(f"{provider} does not connect through OAuth.", field="provider")
    state = secrets.token_urlsafe(32)
    parameters = {"schedule": schedule.wix_id, "provider": provider.wix_id, "method": "OAUTH"}

    def call() -> StartedConnect:
        url = client_for(tenant).connect_by_oauth(
            schedule_id=schedule.wix_id, provider_id=provider.wix_id, redirect_url=return_url(state)
        )
        request = ConnectRequest.objects.create(
            tenant=tenant,
            schedule=schedule,
            provider=provider,
            method=ConnectMethodChoice.OAUTH,
            created_by=user if user and user.pk else None,
            expires_at=timezone.now() + CONNECT_REQUEST_LIFETIME,
            state_hash=_hash_state(state),
            oauth_url=url,
        )
        return StartedConnect(request=request, oauth_url=url, state=state)

    return _audited(
        "start_oauth_connect",
        user=user,
        tenant=tenant,
        target=schedule,
        parameters=parameters,
        via=via,
        call=call,
    )


def _is_requested(answer: wix.Connection, request: ConnectRequest) -> bool:
    """Whether Wix's connection is the one the request asked for: its schedule and provider."""
    return (
        answer.schedule_id == request.schedule.wix_id
        and answer.provider_id == request.provider.wix_id
    )


class ReturnRefused(Exception):
    """An OAuth return whose state is unknown, used or expired."""


@dataclass(frozen=True)
class ConnectOutcome:
    request: ConnectRequest
    connected: bool
    message: str


def complete_oauth_connect(
    state: str, *, connection_id: str | None, error: str | None
) -> ConnectOutcome:
    """Finish the ConnectRequest behind `state` with what Wix appended to the return URL.

    Raises `ReturnRefused` for a forged, reused or expired state. On success the new
    connection is fetched with Get Connection and mirrored.
    """
    with transaction.atomic():
        request = (
            ConnectRequest.objects.select_for_update()
            .select_related("tenant", "schedule", "provider")
            .filter(state_hash=_hash_state(state))
            .first()
        )
        if request is None:
            raise ReturnRefused("This connection link is not valid.")
        if request.status != ConnectRequestStatus.PENDING:
            raise ReturnRefused("This connection link was already used.")
        if request.expires_at <= timezone.now():
            raise ReturnRefused("This connection link has expired.")
        request.completed_at = timezone.now()
        if connection_id:
            try:
                answer = client_for(request.tenant).get_connection(connection_id)
            except (WixError, ActionRefused) as exc:
                request.status = ConnectRequestStatus.FAILED
                request.error = getattr(exc, "code", "CREDENTIALS_UNREADABLE")
                message = "The calendar was connected, but the portal could not read it yet."
            else:
                if _is_requested(answer, request):
                    request.connection = services.mirror_connections(request.tenant, [answer])[0]
                    request.status = ConnectRequestStatus.CONNECTED
                    message = f"Your calendar is now connected to {request.schedule.label}."
                else:
                    # A connectionId is only a query parameter: anyone holding the link can
                    # put another of the site's connections there. It is not linked.
                    request.status = ConnectRequestStatus.FAILED
                    request.error = WRONG_CONNECTION
                    message = OAUTH_ERRORS[WRONG_CONNECTION]
        else:
            # Only Wix's own words are kept; anything else (NUL bytes, markup) is "internal".
            request.error = error if error in OAUTH_ERRORS else "internal"
            request.status = ConnectRequestStatus.FAILED
            message = OAUTH_ERRORS[request.error]
        request.save()
    audit.record(
        user=request.created_by,
        action="complete_oauth_connect",
        tenant=request.tenant,
        target=request,
        parameters={"error": request.error} if request.error else {},
        outcome=AuditOutcome.OK
        if request.status == ConnectRequestStatus.CONNECTED
        else AuditOutcome.FAILED,
        message=message,
        via="oauth-return",
    )
    return ConnectOutcome(
        request=request,
        connected=request.status == ConnectRequestStatus.CONNECTED,
        message=message,
    )


# Wix's codes for a refused credentials connect, in plain language (docs/wix-contract.md §1.5).
CREDENTIALS_ERRORS = {
    "BAD_CREDENTIALS": "The email or password was not accepted by the calendar provider.",
    "PREMIUM_FEATURE_NOT_ENABLED": "This site's Wix plan does not include calendar "
    "connections by email and password.",
    "NOT_SUPPORTED_BY_PROVIDER": "This provider does not connect with an email and password.",
}


def describe_wix_error(error: WixError) -> str:
    """Wix's own message and code, for showing a person."""
    return f"{error.message or 'Wix refused the request.'} (Wix: {error.code})"


def explain(error: WixError) -> str:
    """A credentials connect's failure in plain language, with Wix's code for support.

    Only for Connect By Credentials: elsewhere the same codes mean other things.
    """
    plain = CREDENTIALS_ERRORS.get(error.code)
    if plain is None:
        return describe_wix_error(error)
    return f"{plain} (Wix: {error.code})"


def connect_with_credentials(
    *,
    tenant: Tenant,
    schedule: Schedule,
    provider: Provider,
    email: str,
    password: str,
    user,
    via: str = "admin",
) -> Connection:
    """Connect with the calendar account's email and password; return the mirrored row.

    The password goes to Wix once and is never stored, logged or audited.
    """
    if schedule.tenant_id != tenant.pk or provider.tenant_id != tenant.pk:
        raise ActionRefused("The schedule and provider must belong to the tenant.")
    if not provider.supports(wix.ConnectMethod.CREDENTIALS):
        raise ActionRefused(
            f"{provider} does not connect with an email and password.", field="provider"
        )
    parameters = {"schedule": schedule.wix_id, "provider": provider.wix_id, "email": email}

    def call() -> Connection:
        answer = client_for(tenant).connect_by_credentials(
            schedule_id=schedule.wix_id,
            provider_id=provider.wix_id,
            email=email,
            password=password,
        )
        return services.mirror_connections(tenant, [answer])[0]

    return _audited(
        "connect_with_credentials",
        user=user,
        tenant=tenant,
        target=schedule,
        parameters=parameters,
        via=via,
        call=call,
    )


# --- Events ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EventsListing:
    events: list[wix.Event]
    failed_provider_ids: list[str]
    truncated: bool


def list_events(
    tenant: Tenant,
    *,
    start: datetime,
    end: datetime,
    schedule_ids: Iterable[str] = (),
    user_ids: Iterable[str] = (),
    include_titles: bool = False,
) -> EventsListing:
    """Return the events of the tenant's connected calendars in [start, end), all pages.

    Stops after MAX_EVENTS and says so; failed providers of any page are named.
    """
    if end <= start:
        raise ActionRefused("The end of the range must come after its start.", field="end")
    events: list[wix.Event] = []
    failed: list[str] = []
    pages = client_for(tenant).iter_event_pages(
        start=start,
        end=end,
        schedule_ids=list(schedule_ids),
        user_ids=list(user_ids),
        include_titles=include_titles,
        limit=1000,
    )
    for page in pages:
        failed.extend(p for p in page.failed_provider_ids if p not in failed)
        events.extend(page.events)
        if len(events) >= MAX_EVENTS:
            return EventsListing(events[:MAX_EVENTS], failed, truncated=True)
    return EventsListing(events, failed, truncated=False)
