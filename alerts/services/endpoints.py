"""Webhook endpoints: create (the secret shown once), update, delete, rotate the secret, send a
test event, replay deliveries. Each verb writes its rows and its AuditEvent in one transaction.

An endpoint's owner bounds it: its tenants must be ones the owner can see, and a tenant the
owner cannot see is refused exactly like one that does not exist. The URL must pass the SSRF
guard (`alerts.webhooks.guard`). Invalid input raises ValidationError keyed by field
(`url`, `description`, `event_types`, `tenants`, `owner`), for a form or a serializer to show.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from common.events import SUBSCRIBABLE, EventType
from tenants import audit
from tenants.models import AuditAction, Tenant, Via

from .. import tasks
from ..models import (
    Delivery,
    DeliveryState,
    DisabledReason,
    WebhookEndpoint,
    WebhookSecret,
)
from ..webhooks import guard, payloads, signing
from . import deliveries

# How long a rotated-out secret keeps signing, so receivers can switch at leisure.
SECRET_OVERLAP = timedelta(hours=24)
# One "replay failed since" queues at most this many deliveries.
REPLAY_MAX = 10_000
QUEUE_CHUNK = 100
DESCRIPTION_MAX = 200
URL_MAX = 2000

UNSET: Any = object()


class Refused(Exception):
    """The verb cannot be done now (the endpoint is off, the delivery still in progress);
    the message says why, for the person who asked."""


ENDPOINT_OFF = "This endpoint is turned off: turn it on before sending to it."
STILL_PENDING = "This delivery is still being attempted; replay it once it has failed."


def validate(
    *,
    owner,
    url: str | None = None,
    description: str | None = None,
    event_types: Iterable[str] | None = None,
    tenant_ids: Iterable[Any] | None = None,
) -> list[Tenant] | None:
    """Check the given fields of an endpoint; return its tenants (None if not given).

    Raises ValidationError({field: [messages]}) naming every bad field.
    """
    errors: dict[str, list[str]] = {}
    if owner is None or not (owner.is_active and owner.is_staff):
        errors["owner"] = ["The owner must be an active staff user."]
    if url is not None:
        if len(url) > URL_MAX:
            errors["url"] = [f"Use at most {URL_MAX} characters."]
        else:
            try:
                guard.check_url(url)
            except ValidationError as exc:
                errors["url"] = exc.messages
    if description is not None and len(description) > DESCRIPTION_MAX:
        errors["description"] = [f"Use at most {DESCRIPTION_MAX} characters."]
    if event_types is not None:
        unknown = [t for t in event_types if t not in SUBSCRIBABLE]
        if unknown:
            errors["event_types"] = [
                f"Unknown event type: {', '.join(map(str, unknown))}. "
                f"Choose from {', '.join(SUBSCRIBABLE)}."
            ]
    tenants = None
    if tenant_ids is not None and "owner" not in errors:
        tenants, missing = _visible_tenants(owner, tenant_ids)
        if missing:
            # The same words for a tenant that does not exist and one the owner cannot see.
            errors["tenants"] = [f"No such tenant: {', '.join(missing)}."]
    if errors:
        raise ValidationError(errors)
    return tenants


def _visible_tenants(owner, tenant_ids: Iterable[Any]) -> tuple[list[Tenant], list[str]]:
    wanted: dict[int, str] = {}
    missing: list[str] = []
    for given in tenant_ids:
        given = getattr(given, "pk", given)
        try:
            wanted[int(given)] = str(given)
        except (TypeError, ValueError):
            missing.append(str(given))
    found = {t.pk: t for t in Tenant.objects.visible_to(owner).filter(pk__in=list(wanted))}
    missing += [text for pk, text in wanted.items() if pk not in found]
    return [found[pk] for pk in wanted if pk in found], missing


def endpoint_create(
    *,
    owner,
    url: str,
    description: str = "",
    event_types: Sequence[str] = (),
    tenant_ids: Iterable[Any] = (),
    user,
    via: Via,
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint and its first secret; return both. The secret is not shown again.

    Only a URL: every event type, about every tenant the owner can see.
    """
    url, types = url.strip(), _unique(event_types)
    tenants = validate(
        owner=owner, url=url, description=description, event_types=types, tenant_ids=tenant_ids
    )
    secret = signing.generate_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            owner=owner, url=url, description=description, event_types=types
        )
        endpoint.tenants.set(tenants or [])
        WebhookSecret.objects.create(endpoint=endpoint, secret=secret)
        audit.record(
            AuditAction.CREATE_WEBHOOK_ENDPOINT,
            user=user,
            via=via,
            target=endpoint,
            parameters={"owner": owner.get_username(), **_recorded(endpoint)},
        )
    return endpoint, secret


def endpoint_update(
    endpoint: WebhookEndpoint,
    *,
    user,
    via: Via,
    url: str = UNSET,
    description: str = UNSET,
    event_types: Sequence[str] = UNSET,
    tenant_ids: Iterable[Any] = UNSET,
    is_enabled: bool = UNSET,
) -> WebhookEndpoint:
    """Change the given fields and audit what changed; return the endpoint as saved.

    Compared with the stored row, not with `endpoint` (a form may have changed it already).
    Turning it off cancels its pending deliveries; turning it on forgets why it was off.
    """
    stored = WebhookEndpoint.objects.select_related("owner").get(pk=endpoint.pk)
    before = _recorded(stored)
    given = {
        "url": url.strip() if url is not UNSET else None,
        "description": description if description is not UNSET else None,
        "event_types": _unique(event_types) if event_types is not UNSET else None,
    }
    if given["url"] == stored.url:
        given["url"] = None  # unchanged: not resolved again
    tenants = validate(
        owner=stored.owner,
        tenant_ids=tenant_ids if tenant_ids is not UNSET else None,
        **given,
    )
    now = timezone.now()
    for name, value in given.items():
        if value is not None:
            setattr(stored, name, value)
    if is_enabled is not UNSET and bool(is_enabled) != stored.is_enabled:
        stored.is_enabled = bool(is_enabled)
        stored.disabled_reason = "" if is_enabled else DisabledReason.MANUAL
        stored.disabled_at = None if is_enabled else now
        stored.failing_since = None
    with transaction.atomic():
        stored.save()
        if tenants is not None:
            stored.tenants.set(tenants)
        if not stored.is_enabled:
            deliveries.cancel_pending(stored.pk, at=now)
        audit.record(
            AuditAction.UPDATE_WEBHOOK_ENDPOINT,
            user=user,
            via=via,
            target=stored,
            changes=audit.changes_between(before, _recorded(stored)),
        )
    return stored


def endpoint_delete(endpoint: WebhookEndpoint, *, user, via: Via) -> None:
    """Delete the endpoint with its secrets and delivery log."""
    with transaction.atomic():
        audit.record(
            AuditAction.DELETE_WEBHOOK_ENDPOINT,
            user=user,
            via=via,
            target=endpoint,
            parameters=_recorded(endpoint),
        )
        endpoint.delete()


def endpoint_rotate_secret(
    endpoint: WebhookEndpoint, *, user, via: Via, now: datetime | None = None
) -> str:
    """Make a new secret and return it (shown once); the current one keeps signing for 24
    hours alongside it. Secrets expired already are deleted."""
    now = now or timezone.now()
    secret = signing.generate_secret()
    with transaction.atomic():
        secrets = WebhookSecret.objects.filter(endpoint=endpoint)
        secrets.filter(expires_at__lte=now).delete()
        secrets.filter(expires_at__isnull=True).update(expires_at=now + SECRET_OVERLAP)
        WebhookSecret.objects.create(endpoint=endpoint, secret=secret, created_at=now)
        audit.record(
            AuditAction.ROTATE_WEBHOOK_SECRET,
            user=user,
            via=via,
            target=endpoint,
            parameters={"previous_valid_until": payloads.iso(now + SECRET_OVERLAP)},
        )
    return secret


def endpoint_send_test(endpoint: WebhookEndpoint, *, user, via: Via) -> Delivery:
    """Queue a `webhook.test` event to the endpoint, whatever it subscribes to; return its
    delivery, whose first attempt is made once this commits. Raises Refused when it is off."""
    if not endpoint.is_enabled:
        raise Refused(ENDPOINT_OFF)
    now = timezone.now()
    msg_id = payloads.new_msg_id()
    body = payloads.render(
        EventType.WEBHOOK_TEST,
        msg_id=msg_id,
        occurred_at=now,
        data=payloads.test_data(endpoint_id=endpoint.pk, description=endpoint.description),
    )
    with transaction.atomic():
        delivery = deliveries.create(
            endpoint,
            event_type=EventType.WEBHOOK_TEST,
            msg_id=msg_id,
            body=body,
            is_test=True,
            now=now,
        )
        audit.record(
            AuditAction.SEND_TEST_WEBHOOK,
            user=user,
            via=via,
            target=endpoint,
            parameters={"delivery": delivery.pk, "webhook_id": msg_id},
        )
        _queue([delivery.pk])
    return delivery


def delivery_replay(delivery: Delivery, *, user, via: Via) -> Delivery:
    """Queue the delivery again, the same `webhook-id` and body; return the new delivery.

    Raises Refused while it is still pending, or when its endpoint is off.
    """
    if delivery.state == DeliveryState.PENDING:
        raise Refused(STILL_PENDING)
    endpoint = delivery.endpoint
    if not endpoint.is_enabled:
        raise Refused(ENDPOINT_OFF)
    with transaction.atomic():
        replay = deliveries.create(
            endpoint,
            event_type=delivery.event_type,
            msg_id=delivery.msg_id,
            body=delivery.body,
            tenant=delivery.tenant,
            is_test=delivery.is_test,
            replay_of=delivery,
        )
        audit.record(
            AuditAction.REPLAY_WEBHOOK_DELIVERY,
            user=user,
            via=via,
            tenant=delivery.tenant,
            target=endpoint,
            parameters={"delivery": delivery.pk, "replay": replay.pk, "webhook_id": replay.msg_id},
        )
        _queue([replay.pk])
    return replay


def deliveries_replay_failed(
    endpoint: WebhookEndpoint, *, since: datetime, user, via: Via
) -> list[Delivery]:
    """Queue again every delivery of the endpoint made since `since` that failed or was
    cancelled and has not been replayed, oldest first, at most REPLAY_MAX; return the replays.

    Raises Refused when the endpoint is off.
    """
    if not endpoint.is_enabled:
        raise Refused(ENDPOINT_OFF)
    now = timezone.now()
    with transaction.atomic():
        missed = list(
            Delivery.objects.filter(
                Q(state=DeliveryState.FAILED) | Q(state=DeliveryState.CANCELLED),
                endpoint=endpoint,
                created_at__gte=since,
                replays__isnull=True,
            ).order_by("created_at", "pk")[:REPLAY_MAX]
        )
        replays = Delivery.objects.bulk_create(
            Delivery(
                endpoint=endpoint,
                tenant_id=original.tenant_id,
                msg_id=original.msg_id,
                event_type=original.event_type,
                body=original.body,
                is_test=original.is_test,
                replay_of=original,
                next_attempt_at=now,
                created_at=now,
            )
            for original in missed
        )
        audit.record(
            AuditAction.REPLAY_FAILED_WEBHOOKS,
            user=user,
            via=via,
            target=endpoint,
            parameters={"since": payloads.iso(since), "replays": len(replays)},
        )
        _queue([replay.pk for replay in replays])
    return replays


def _queue(delivery_ids: list[int]) -> None:
    """Make the first attempts once the transaction commits (in process, without a broker)."""
    for start in range(0, len(delivery_ids), QUEUE_CHUNK):
        chunk = delivery_ids[start : start + QUEUE_CHUNK]
        transaction.on_commit(lambda chunk=chunk: tasks.deliver.delay(chunk))


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values))


def redacted_url(url: str) -> str:
    """The URL as the trail keeps it: scheme, host and port; a path or query, which may hold
    the receiver's own token, as "/…"."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    rest = parts.path not in ("", "/") or parts.query or parts.fragment
    return f"{origin}/…" if rest else f"{origin}/"


def _recorded(endpoint: WebhookEndpoint) -> dict[str, Any]:
    tenant_ids = sorted(t.pk for t in endpoint.tenants.all()) if endpoint.pk is not None else []
    return {
        "url": redacted_url(endpoint.url),
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "tenants": tenant_ids,
        "is_enabled": endpoint.is_enabled,
    }
