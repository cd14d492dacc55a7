"""Sending webhook deliveries: claim the due ones under a lease, send, record the attempt.

A delivery is a row; an attempt is sent by whoever claimed it: `claim` takes due rows with
`select_for_update(skip_locked=True)` and leases them (a token, until `leased_until`) in one
short transaction, so two workers never claim one attempt. On SQLite, which has no row
locks, Django leaves the clause out and the settings' IMMEDIATE transactions serialise the
claims instead. The HTTP request is made after that commit, with no lock held, and its result
is written only where the lease is still ours: a worker that stalled past its lease, whose
delivery went to another worker meanwhile, writes nothing.

A worker stopped mid-send leaves its lease to expire; the next sweep sends the delivery
again as its next attempt, with the same `webhook-id` (at least once, never lost).
"""

from __future__ import annotations

import logging
import random
import smtplib
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from tenants.crypto import DecryptionError
from tenants.fields import reveal
from tenants.models import Tenant

from ..models import (
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    DisabledReason,
    WebhookEndpoint,
    WebhookSecret,
)
from ..webhooks import transport
from ..webhooks.transport import AttemptError, Outcome

logger = logging.getLogger(__name__)

# One sweep sends at most this many attempts; the next sweep goes on.
SWEEP_MAX = 1000


@dataclass(frozen=True)
class Claimed:
    """A leased delivery and what sending it takes. `keys` are the plaintext secrets: kept in
    memory for the attempt, never logged or passed to a task."""

    pk: int
    token: str
    number: int
    endpoint_id: int
    url: str
    msg_id: str
    body: str
    keys: tuple[str, ...]

    def __repr__(self) -> str:
        return f"<Claimed delivery {self.pk} attempt {self.number}>"


class _Clock:
    """`now` as given, moving on with real time: a test may start a sweep days ahead."""

    def __init__(self, now: datetime | None) -> None:
        self.start = now or timezone.now()
        self.started = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.started)


def create(
    endpoint: WebhookEndpoint,
    *,
    event_type: str,
    msg_id: str,
    body: str,
    tenant: Tenant | None = None,
    is_test: bool = False,
    replay_of: Delivery | None = None,
    now: datetime | None = None,
) -> Delivery:
    """Save a pending delivery, due at once. The caller queues its first attempt on commit."""
    now = now or timezone.now()
    return Delivery.objects.create(
        endpoint=endpoint,
        tenant=tenant,
        msg_id=msg_id,
        event_type=event_type,
        body=body,
        is_test=is_test,
        replay_of=replay_of,
        next_attempt_at=now,
        created_at=now,
    )


def send_due(now: datetime | None = None, *, ids: Iterable[int] | None = None) -> int:
    """Send every due delivery (only those of `ids`, if given) once; return the attempts made.

    `now` (default: the current time) decides what is due and when retries fall; each
    attempt's signature carries the real time, which receivers check.
    """
    clock = _Clock(now)
    ids = list(ids) if ids is not None else None
    threads = max(settings.WEBHOOK_SENDER_THREADS, 1)
    seen: set[int] = set()
    made = 0
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="webhook") as pool:
        while made < SWEEP_MAX:
            batch = claim(clock.now(), limit=threads, ids=ids, exclude=seen)
            if not batch:
                break
            seen.update(claimed.pk for claimed in batch)
            outcomes = list(pool.map(attempt, batch)) if len(batch) > 1 else [attempt(batch[0])]
            for claimed, outcome in zip(batch, outcomes, strict=True):
                record(claimed, outcome, at=clock.now())
            made += len(batch)
    return made


def claim(
    now: datetime, *, limit: int, ids: Sequence[int] | None = None, exclude: Iterable[int] = ()
) -> list[Claimed]:
    """Lease up to `limit` due deliveries (of `ids`, if given; none of `exclude`) and count
    their attempt; return them with their endpoint's valid secrets."""
    lease_until = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    token = uuid.uuid4().hex
    with transaction.atomic():
        due = Delivery.objects.due(now)
        if ids is not None:
            due = due.filter(pk__in=ids)
        exclude = list(exclude)
        if exclude:
            due = due.exclude(pk__in=exclude)
        pks = list(
            due.select_for_update(skip_locked=True, of=("self",))
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        if not pks:
            return []
        Delivery.objects.filter(pk__in=pks).update(
            lease_token=token, leased_until=lease_until, attempts=F("attempts") + 1
        )
        rows = list(
            Delivery.objects.filter(pk__in=pks)
            .select_related("endpoint")
            .order_by("next_attempt_at", "pk")
        )
        keys = _keys({row.endpoint_id for row in rows}, now)
    return [
        Claimed(
            pk=row.pk,
            token=token,
            number=row.attempts,
            endpoint_id=row.endpoint_id,
            url=row.endpoint.url,
            msg_id=row.msg_id,
            body=row.body,
            keys=keys.get(row.endpoint_id, ()),
        )
        for row in rows
    ]


def _keys(endpoint_ids: set[int], now: datetime) -> dict[int, tuple[str, ...]]:
    """Each endpoint's readable secrets valid at `now`, newest first."""
    found: dict[int, list[str]] = {}
    secrets = WebhookSecret.objects.filter(endpoint_id__in=endpoint_ids).valid_at(now)
    for secret in secrets.order_by("-created_at", "-pk"):
        try:
            found.setdefault(secret.endpoint_id, []).append(reveal(secret.secret))
        except DecryptionError:
            logger.error(
                "A secret of webhook endpoint %s cannot be decrypted; rotate it",
                secret.endpoint_id,
            )
    return {pk: tuple(keys) for pk, keys in found.items()}


def attempt(claimed: Claimed) -> Outcome:
    """Send one claimed delivery; no database access (it runs on a sender thread)."""
    if not claimed.keys:
        return Outcome(status=None, error=AttemptError.SECRET_UNREADABLE, excerpt="", duration_ms=0)
    return transport.post(
        claimed.url,
        msg_id=claimed.msg_id,
        body=claimed.body,
        keys=claimed.keys,
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
    )


def record(claimed: Claimed, outcome: Outcome, *, at: datetime) -> bool:
    """Write the attempt's result if the lease is still ours; return whether it was.

    A 2xx succeeds. A 410 fails the delivery and turns the endpoint off at once. Anything
    else is retried on the schedule (Retry-After on 429 and 503 may lengthen the wait) until
    it runs out; an endpoint failing for WEBHOOK_DISABLE_AFTER_DAYS is turned off. Turning
    off cancels the endpoint's pending deliveries and emails its owner.
    """
    started_at = at - timedelta(milliseconds=outcome.duration_ms)
    gone = outcome.status == 410
    retry_at = None
    if outcome.succeeded:
        state = DeliveryState.SUCCEEDED
    elif gone:
        state = DeliveryState.FAILED
    else:
        retry_at = next_attempt_at(claimed.number, outcome, at=at)
        state = DeliveryState.PENDING if retry_at else DeliveryState.FAILED
    disabled = False
    with transaction.atomic():
        leased = Delivery.objects.select_for_update().filter(
            pk=claimed.pk, lease_token=claimed.token, state=DeliveryState.PENDING
        )
        if not list(leased.values_list("pk", flat=True)):
            logger.warning(
                "Delivery %s: attempt %d finished after its lease was lost; result dropped",
                claimed.pk,
                claimed.number,
            )
            return False
        endpoints = WebhookEndpoint.objects.filter(pk=claimed.endpoint_id)
        if outcome.succeeded:
            endpoints.filter(failing_since__isnull=False).update(failing_since=None)
        else:
            endpoints.filter(failing_since__isnull=True).update(failing_since=started_at)
            if gone:
                disabled = _disable(claimed.endpoint_id, DisabledReason.GONE, at=at)
            else:
                cutoff = at - timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS)
                if endpoints.filter(is_enabled=True, failing_since__lte=cutoff).exists():
                    disabled = _disable(claimed.endpoint_id, DisabledReason.FAILING, at=at)
        if disabled and state == DeliveryState.PENDING:
            state, retry_at = DeliveryState.CANCELLED, None
        Delivery.objects.filter(pk=claimed.pk).update(
            state=state,
            last_status=outcome.status,
            next_attempt_at=retry_at,
            lease_token="",
            leased_until=None,
            finished_at=None if state == DeliveryState.PENDING else at,
        )
        DeliveryAttempt.objects.create(
            delivery_id=claimed.pk,
            number=claimed.number,
            started_at=started_at,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status,
            error=outcome.error,
            response_excerpt=outcome.excerpt,
            retry_at=retry_at,
        )
    logger.info(
        "Delivery %s attempt %d to endpoint %s: %s in %d ms, %s",
        claimed.pk,
        claimed.number,
        claimed.endpoint_id,
        outcome.status or outcome.error,
        outcome.duration_ms,
        state,
    )
    if disabled:
        tell_owner_disabled(claimed.endpoint_id)
    return True


def next_attempt_at(number: int, outcome: Outcome, *, at: datetime) -> datetime | None:
    """When attempt `number + 1` is due after `outcome`, or None when the schedule ran out."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE_SECONDS
    if number > len(schedule):
        return None
    jitter = settings.WEBHOOK_RETRY_JITTER
    wait = schedule[number - 1] * random.uniform(1 - jitter, 1 + jitter)
    if outcome.retry_after is not None:
        wait = max(wait, min(outcome.retry_after, settings.WEBHOOK_RETRY_AFTER_MAX_SECONDS))
    return at + timedelta(seconds=wait)


def _disable(endpoint_id: int, reason: DisabledReason, *, at: datetime) -> bool:
    """Turn the endpoint off and cancel its pending deliveries; False if it was off already."""
    turned_off = WebhookEndpoint.objects.filter(pk=endpoint_id, is_enabled=True).update(
        is_enabled=False, disabled_reason=reason, disabled_at=at
    )
    if turned_off:
        cancel_pending(endpoint_id, at=at)
    return bool(turned_off)


def cancel_pending(endpoint_id: int, *, at: datetime) -> int:
    """Cancel the endpoint's pending deliveries (a leased one's result is then dropped)."""
    return Delivery.objects.filter(endpoint_id=endpoint_id, state=DeliveryState.PENDING).update(
        state=DeliveryState.CANCELLED,
        next_attempt_at=None,
        lease_token="",
        leased_until=None,
        finished_at=at,
    )


DISABLED_SUBJECT = "Webhook endpoint turned off: {endpoint}"
DISABLED_BODY = """Your webhook endpoint "{endpoint}" ({host}) no longer receives events: {why}.

Its pending deliveries were cancelled. Once the receiver works again, turn the endpoint on in
the portal's admin (Alerts, Webhook endpoints) and replay what it missed with "Replay failed
deliveries since".
"""
WHY = {
    DisabledReason.GONE: "it answered 410 Gone, which says it is gone for good",
    DisabledReason.FAILING: "every attempt since {since} UTC has failed, for {days:g} days",
}


def tell_owner_disabled(endpoint_id: int) -> bool:
    """Email the endpoint's owner that it was turned off and why; return whether mail went.

    A refused email is logged, not raised: the endpoint is off either way.
    """
    endpoint = WebhookEndpoint.objects.select_related("owner").get(pk=endpoint_id)
    address = endpoint.owner.email
    if not address:
        logger.warning(
            "Webhook endpoint %s turned off; its owner has no email address", endpoint_id
        )
        return False
    since = endpoint.failing_since or endpoint.disabled_at
    why = WHY.get(endpoint.disabled_reason, "it was turned off").format(
        since=f"{since:%Y-%m-%d %H:%M}" if since else "?",
        days=settings.WEBHOOK_DISABLE_AFTER_DAYS,
    )
    try:
        send_mail(
            DISABLED_SUBJECT.format(endpoint=endpoint),
            DISABLED_BODY.format(endpoint=endpoint, host=endpoint.host, why=why),
            None,
            [address],
        )
    except (smtplib.SMTPException, OSError) as exc:
        logger.warning(
            "Webhook endpoint %s turned off; emailing its owner failed: %s",
            endpoint_id,
            type(exc).__name__,
        )
        return False
    return True
