"""Connecting a schedule to a calendar: an OAuth link the owner follows, or the account's
email and password."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from tenants import audit
from tenants.models import AuditAction, AuditOutcome, Tenant, Via
from wixapi import types as wix
from wixapi.errors import WixError

from ..messages import OAUTH_ERRORS, WRONG_CONNECTION
from ..models import (
    Connection,
    ConnectMethodChoice,
    ConnectRequest,
    ConnectRequestStatus,
    Provider,
    Schedule,
)
from .common import client_for, connection_changes, failure_audited
from .errors import ActionRefused, ReturnRefused
from .refresh import mirror_connections

# How long an OAuth link stays usable; Wix's consent is interactive, so hours, not days.
CONNECT_REQUEST_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True)
class StartedConnect:
    request: ConnectRequest
    oauth_url: str
    # The single-use token in the return URL; shown nowhere, kept only as a hash.
    state: str = field(repr=False)


def oauth_connect_start(
    *,
    tenant: Tenant,
    schedule: Schedule,
    provider: Provider,
    return_url: Callable[[str], str],
    user,
    via: Via,
    reconnecting: Connection | None = None,
) -> StartedConnect:
    """Ask Wix for an OAuth link for the schedule, track it as a ConnectRequest and audit
    it (START_OAUTH_CONNECT); return the request and the link.

    `return_url(state)` builds the absolute URL the owner comes back to; `reconnecting`
    names the broken connection the link replaces, for the trail. Raises `ActionRefused`
    when the schedule or provider is another tenant's or the provider has no OAuth, and
    the `WixError` of a refusal (audited).
    """
    _check_owned(tenant, schedule, provider)
    if not provider.supports(wix.ConnectMethod.OAUTH):
        raise ActionRefused(f"{provider} does not connect through OAuth.", field="provider")
    state = secrets.token_urlsafe(32)
    parameters: dict[str, Any] = {
        "schedule": schedule.wix_id,
        "provider": provider.wix_id,
        "method": ConnectMethodChoice.OAUTH.value,
    }
    if reconnecting is not None:
        parameters["connection"] = reconnecting.wix_id
    audited = {"user": user, "via": via, "tenant": tenant, "parameters": parameters}
    with failure_audited(AuditAction.START_OAUTH_CONNECT, target=schedule, **audited):
        client = client_for(tenant)
        url = client.connect_by_oauth(
            schedule_id=schedule.wix_id, provider_id=provider.wix_id, redirect_url=return_url(state)
        )
    with transaction.atomic():
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
        audit.record(
            AuditAction.START_OAUTH_CONNECT,
            target=request,
            changes={"status": [None, request.status]},
            wix_request_id=client.last_request_id,
            **audited,
        )
    return StartedConnect(request=request, oauth_url=url, state=state)


@dataclass(frozen=True)
class ConnectOutcome:
    request: ConnectRequest
    connected: bool
    message: str


def oauth_connect_complete(
    state: str, *, connection_id: str | None, error: str | None
) -> ConnectOutcome:
    """Finish the ConnectRequest behind `state` with what Wix appended to the return URL,
    and audit it (COMPLETE_OAUTH_CONNECT, by whoever started it, via the OAuth return).

    Raises `ReturnRefused` for a forged, reused or expired state. On success the new
    connection is fetched with Get Connection and mirrored, in the request's transaction.
    """
    request_id, failure = "", None
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
                client = client_for(request.tenant)
                answer = client.get_connection(connection_id)
            except (WixError, ActionRefused) as exc:
                failure = exc
                request.status = ConnectRequestStatus.FAILED
                request.error = getattr(exc, "code", "") or "CREDENTIALS_UNREADABLE"
                message = "The calendar was connected, but the portal could not read it yet."
            else:
                request_id = client.last_request_id
                if _is_requested(answer, request):
                    request.connection = mirror_connections(request.tenant, [answer])[0]
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
        connected = request.status == ConnectRequestStatus.CONNECTED
        parameters: dict[str, Any] = {"error": request.error} if request.error else {}
        if connection_id:
            parameters["connection"] = connection_id
        audit.record(
            AuditAction.COMPLETE_OAUTH_CONNECT,
            user=request.created_by,
            via=Via.OAUTH_RETURN,
            tenant=request.tenant,
            target=request,
            parameters=parameters,
            changes={"status": [ConnectRequestStatus.PENDING.value, request.status]},
            outcome=AuditOutcome.OK if connected else AuditOutcome.FAILED,
            error=failure,
            message=message,
            wix_request_id=request_id,
        )
    return ConnectOutcome(request=request, connected=connected, message=message)


def credentials_connect(
    *,
    tenant: Tenant,
    schedule: Schedule,
    provider: Provider,
    email: str,
    password: str,
    user,
    via: Via,
) -> Connection:
    """Connect with the calendar account's email and password, mirror the new connection
    and audit it (CONNECT_WITH_CREDENTIALS); return the mirrored row.

    The password goes to Wix once and is never stored, logged or audited. Raises
    `ActionRefused` when the schedule or provider is another tenant's or the provider takes
    no password, and the `WixError` of a refusal (audited).
    """
    _check_owned(tenant, schedule, provider)
    if not provider.supports(wix.ConnectMethod.CREDENTIALS):
        raise ActionRefused(
            f"{provider} does not connect with an email and password.", field="provider"
        )
    parameters = {"schedule": schedule.wix_id, "provider": provider.wix_id, "email": email}
    audited = {"user": user, "via": via, "tenant": tenant, "parameters": parameters}
    with failure_audited(AuditAction.CONNECT_WITH_CREDENTIALS, target=schedule, **audited):
        client = client_for(tenant)
        answer = client.connect_by_credentials(
            schedule_id=schedule.wix_id,
            provider_id=provider.wix_id,
            email=email,
            password=password,
        )
    before = Connection.objects.filter(tenant=tenant, wix_id=answer.id).first()
    with transaction.atomic():
        row = mirror_connections(tenant, [answer])[0]
        audit.record(
            AuditAction.CONNECT_WITH_CREDENTIALS,
            target=row,
            changes=connection_changes(before, row),
            wix_request_id=client.last_request_id,
            **audited,
        )
    return row


def _check_owned(tenant: Tenant, schedule: Schedule, provider: Provider) -> None:
    if schedule.tenant_id != tenant.pk or provider.tenant_id != tenant.pk:
        raise ActionRefused("The schedule and provider must belong to the tenant.")


def _hash_state(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _is_requested(answer: wix.Connection, request: ConnectRequest) -> bool:
    """Whether Wix's connection is the one the request asked for: its schedule and provider."""
    return (
        answer.schedule_id == request.schedule.wix_id
        and answer.provider_id == request.provider.wix_id
    )
