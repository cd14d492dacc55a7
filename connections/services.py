"""Mirror verbs: read a tenant's site from Wix, then write what changed in one transaction."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from hashlib import blake2b
from typing import Any

from django.db import connections, router, transaction
from django.utils import timezone

from tenants.crypto import DecryptionError
from tenants.models import CREDENTIALS_UNREADABLE, Tenant
from tenants.wix import client_for
from wixapi import types as wix
from wixapi.client import WixClient
from wixapi.errors import WixError, WixRateLimited, WixUnavailable

from . import bulk, mirror
from .models import (
    Connection,
    ConnectionChange,
    Provider,
    RefreshOutcome,
    RefreshRun,
    Schedule,
)

logger = logging.getLogger(__name__)

# Staff schedules that were cancelled still name the connections made before.
SCHEDULE_STATUSES = ("ACTIVE", "CANCELLED")


@dataclass(frozen=True)
class Listing:
    """Everything one refresh reads from Wix, before anything is written."""

    providers: tuple[wix.Provider, ...]
    schedules: tuple[Mapping[str, Any], ...]  # as Wix sent them: read only where they changed
    connections: wix.ListConnectionsResult
    digest: str = ""  # of Wix's answers, byte for byte (see `_trusted`)


def fetch_listing(client: WixClient) -> Listing:
    """Read the site's providers, every page of schedules and its connections from Wix."""
    digest = blake2b(mirror.FINGERPRINT_VERSION, digest_size=16)
    on_body, client.on_body = client.on_body, digest.update
    try:
        providers = client.list_providers()
        pages = client.iter_schedule_pages(
            filter={"status": {"$in": list(SCHEDULE_STATUSES)}}, limit=100
        )
        schedules = tuple(item for page in pages for item in page.items)
        connections = client.list_connections(partial_failure=True)
    finally:
        client.on_body = on_body
    return Listing(
        providers=providers,
        schedules=schedules,
        connections=connections,
        digest=digest.hexdigest(),
    )


def refresh_tenant(
    tenant: Tenant, *, trigger: str = "manual", client: WixClient | None = None
) -> RefreshRun:
    """Bring the tenant's mirror in line with Wix and return the finished RefreshRun.

    Wix is read first; only a successful read is written, in one transaction. Rows absent
    from a complete listing are marked removed; after a partial listing (a provider
    failed) nothing is. A failed read leaves every mirrored row as it was and records why.
    Wix and decryption errors are recorded on the run, not raised; anything else is
    recorded as INTERNAL_ERROR and raised.

    The run is written once, finished (a refresh in progress shows as the tenant's lock,
    `tasks.refresh_is_running`): a site whose answers are unchanged costs that one INSERT,
    made on condition of the last digest (`_trusted`).
    """
    run = RefreshRun(tenant=tenant, started_at=timezone.now(), trigger=trigger)
    try:
        return _refresh(tenant, run, client)
    except Exception as exc:
        _finish_failed(run, exc, calls=client.calls if client else 0)
        raise


def _refresh(tenant: Tenant, run: RefreshRun, client: WixClient | None) -> RefreshRun:
    try:
        client = client or client_for(tenant)
        listing = fetch_listing(client)
    except (WixError, DecryptionError) as exc:
        return _finish_failed(run, exc, calls=client.calls if client else 0)

    now = timezone.now()
    if _trusted(run, listing, client, now=now):
        return _logged(run)
    # Most refreshes find nothing to write, and learn it from one read outside a transaction.
    run.listing_digest = listing.digest
    tally = _apply(tenant, listing, now=now, write=False)
    if tally is not None:
        with _one_writer():
            _finish(run, tally, listing, client)
    else:
        with _one_writer(), transaction.atomic():
            # Two refreshes of one tenant write one after the other, each over fresh rows:
            # the plan is made again under the lock.
            bulk.lock(Tenant, tenant.pk)
            tally = _apply(tenant, listing, now=now, write=True)
            _finish(run, tally, listing, client)
            # Once the run has its pk, which the history names.
            changes = mirror.history(tenant, tally.connections, run=run, now=now)
            bulk.insert(ConnectionChange, list(changes))
    return _logged(run)


def _trusted(run: RefreshRun, listing: Listing, client: WixClient, *, now: datetime) -> bool:
    """Record the run finished, with nothing changed, if Wix's answers are those a recent
    refresh compared the mirror with; return whether it did.

    A refresh that compares the mirror row by row (and writes what differs) records the
    digest of Wix's answers on its run. While later refreshes get the same bytes, within
    `mirror.DIGEST_TRUSTED_FOR`, nothing can differ: they need neither the comparison nor
    its read. Anything else that writes the mirror forgets the digests
    (`mirror_connections`); a new FINGERPRINT_VERSION seeds them differently.
    """
    if not listing.digest:
        return False
    _close(run, Tally(unchanged=len(listing.connections.items)), listing, client)
    with _one_writer():
        return bulk.create_if_trusted(
            run, digest=listing.digest, since=now - mirror.DIGEST_TRUSTED_FOR
        )


def _logged(run: RefreshRun) -> RefreshRun:
    logger.info(
        "Refreshed tenant %s: %s, %d new, %d changed, %d removed, %d Wix calls",
        run.tenant_id,
        run.outcome,
        run.new_count,
        run.changed_count,
        run.removed_count,
        run.wix_calls,
    )
    return run


def _finish(run: RefreshRun, tally: Tally, listing: Listing, client: WixClient) -> None:
    _close(run, tally, listing, client)
    bulk.create(run)


def _close(run: RefreshRun, tally: Tally, listing: Listing, client: WixClient) -> None:
    """Set what a refresh that read Wix records on its run."""
    run.new_count = tally.new
    run.changed_count = tally.changed
    run.unchanged_count = tally.unchanged
    run.removed_count = tally.removed
    run.failed_provider_ids = list(listing.connections.failed_provider_ids)
    run.outcome = RefreshOutcome.OK if listing.connections.complete else RefreshOutcome.PARTIAL
    run.wix_calls = client.calls
    run.finished_at = timezone.now()


# SQLite has one writer at a time; see `_one_writer`.
_sqlite_writer = threading.Lock()


def _one_writer() -> AbstractContextManager[Any]:
    """On SQLite, a lock the threads of this process take around each write (a refresh's
    transaction, and its run's INSERT and UPDATE).

    Waiting for it hands over at once; waiting in SQLite's busy handler sleeps up to 100 ms
    between tries, which left the database idle between refreshes. Other processes still
    wait in the busy handler; PostgreSQL needs no lock.
    """
    if connections[router.db_for_write(Tenant)].vendor == "sqlite":
        return _sqlite_writer
    return nullcontext()


def _finish_failed(run: RefreshRun, exc: Exception, *, calls: int) -> RefreshRun:
    if isinstance(exc, WixError):
        run.error_code = exc.code
        run.error_message = exc.message
        run.wix_request_id = exc.request_id or ""
        # Worth trying again later: Wix was busy or down, not refusing what we sent.
        run.retryable = isinstance(exc, WixRateLimited | WixUnavailable)
    elif isinstance(exc, DecryptionError):
        run.error_code = "CREDENTIALS_UNREADABLE"
        # The message names the field that no key opens, never its value.
        run.error_message = f"{CREDENTIALS_UNREADABLE} {exc}"
    else:
        # Not a Wix answer: keep the message out (it may hold anything), the log has it.
        run.error_code = "INTERNAL_ERROR"
        run.error_message = f"The refresh stopped on an unexpected {type(exc).__name__}."
    run.outcome = RefreshOutcome.FAILED
    run.listing_digest = ""  # nothing was compared
    run.wix_calls = calls
    run.finished_at = timezone.now()
    with _one_writer():
        bulk.create(run)
    logger.warning(
        "Refresh of tenant %s failed: %s %s", run.tenant_id, run.error_code, run.error_message
    )
    return run


def _apply(tenant: Tenant, listing: Listing, *, now: datetime, write: bool) -> Tally | None:
    """Mirror the listing: plan from one read of the stored fingerprints, then write.

    With `write` False nothing is written: the tally if nothing differs, else None (the
    caller then applies the listing again, with `write`, in a transaction). The history of
    the written connections is left to the caller, to record once the run has its pk.
    """
    stored = bulk.fingerprints(mirror.MIRRORED, tenant.pk, seen_after=now - mirror.SEEN_RESOLUTION)
    providers = mirror.plan(
        Provider, mirror.providers(listing.providers), stored[Provider], complete=True
    )
    schedules = mirror.plan(
        Schedule, mirror.schedules(listing.schedules), stored[Schedule], complete=True
    )
    if not write and (providers.writes or schedules.writes):
        return None
    if write:
        mirror.write(providers, tenant, now=now)
        mirror.write(schedules, tenant, now=now)
    connections = mirror.plan(
        Connection,
        mirror.connections(
            listing.connections.items, provider_pks=providers.pks, schedule_pks=schedules.pks
        ),
        stored[Connection],
        complete=listing.connections.complete,
    )
    if not write:
        return None if connections.writes else Tally(unchanged=connections.unchanged)
    mirror.write_connections(connections, tenant, now=now)
    return Tally(
        new=len(connections.new),
        changed=len(connections.changes) + len(connections.reappeared),
        unchanged=connections.unchanged,
        removed=len(connections.removed),
        connections=connections,
    )


@dataclass
class Tally:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    connections: mirror.Diff | None = None  # the written diff, whose history is to record


def mirror_connections(tenant: Tenant, answers: Iterable[wix.Connection]) -> list[Connection]:
    """Mirror connections Wix just returned (after an action); return their rows in order.

    Nothing is marked removed: this is not a complete listing. Changes are recorded
    without a refresh run.
    """
    answers = list(answers)
    now = timezone.now()
    with transaction.atomic():
        bulk.lock(Tenant, tenant.pk)
        provider_pks = dict(
            Provider.objects.filter(
                tenant=tenant, wix_id__in={a.provider_id for a in answers}
            ).values_list("wix_id", "pk")
        )
        schedule_pks = dict(
            Schedule.objects.filter(
                tenant=tenant, wix_id__in={a.schedule_id for a in answers}
            ).values_list("wix_id", "pk")
        )
        stored = bulk.fingerprints([Connection], tenant.pk, seen_after=now - mirror.SEEN_RESOLUTION)
        diff = mirror.plan(
            Connection,
            mirror.connections(
                [a.raw for a in answers], provider_pks=provider_pks, schedule_pks=schedule_pks
            ),
            stored[Connection],
            complete=False,
        )
        mirror.write_connections(diff, tenant, now=now)
        bulk.insert(ConnectionChange, list(mirror.history(tenant, diff, run=None, now=now)))
        # The mirror no longer matches the answers refreshes saw: the next one compares.
        RefreshRun.objects.filter(tenant=tenant).exclude(listing_digest="").update(
            listing_digest=""
        )
    # The rows as written, also those that did not change (a diff reads only what differs).
    pks = [diff.pks[a.id] for a in answers]
    rows = Connection.objects.select_related("tenant", "provider", "schedule").in_bulk(pks)
    return [rows[pk] for pk in pks]
