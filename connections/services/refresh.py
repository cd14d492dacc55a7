"""The refresh: read a tenant's site from Wix, then write what changed in one transaction.

Also `mirror_connections`, with which the other verbs mirror what Wix answered them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from functools import partial
from hashlib import blake2b
from typing import Any

from django.db import connections, router, transaction
from django.utils import timezone

from tenants import audit
from tenants.crypto import DecryptionError
from tenants.models import AuditAction, AuditOutcome, Tenant, Via
from tenants.wix import client_for
from wixapi import types as wix
from wixapi.client import WixClient
from wixapi.errors import WixError

from .. import mirror
from ..mirror import Listing
from ..models import Connection, RefreshOutcome, RefreshRun, RefreshTrigger

logger = logging.getLogger(__name__)

# Staff schedules that were cancelled still name the connections made before.
SCHEDULE_STATUSES = ("ACTIVE", "CANCELLED")


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


# Records an audited refresh's run (with Wix's last request id) in the run's transaction.
RunAudit = Callable[[RefreshRun, str], Any]


def tenant_refresh(
    tenant: Tenant,
    *,
    trigger: str = RefreshTrigger.MANUAL,
    client: WixClient | None = None,
    user=None,
    via: Via | None = None,
    refresh_pass_id: int | None = None,
) -> RefreshRun:
    """Bring the tenant's mirror in line with Wix and return the finished RefreshRun.

    Wix is read first; only a successful read is written, in one transaction. Rows absent
    from a complete listing are marked removed; after a partial listing (a provider
    failed) nothing is. A failed read leaves every mirrored row as it was and records why.
    Wix and decryption errors are recorded on the run, not raised; anything else is
    recorded as INTERNAL_ERROR and raised.

    The run is written once, finished (`RefreshRun.objects.start`): a site whose answers
    are unchanged costs that one INSERT, made on condition of the last digest (`_trusted`).

    With `via`, the refresh is someone's act (a command run by a person), audited as
    REFRESH_TENANT in the transaction that records its run. Without (a scheduled or queued
    refresh, audited when it was queued), nothing is audited and no transaction is opened
    beyond those above.

    `refresh_pass_id` names the pass the refresh is part of (`services.passes`); it is
    written with the run, in the same INSERT.
    """
    run = RefreshRun.objects.start(tenant, trigger=trigger, refresh_pass_id=refresh_pass_id)
    record = partial(_audit_run, user=user, via=via) if via is not None else None
    try:
        return _refresh(tenant, run, client, record)
    except Exception as exc:
        _failed(run, exc, calls=client.calls if client else 0, record=record)
        raise


def _refresh(
    tenant: Tenant, run: RefreshRun, client: WixClient | None, record: RunAudit | None
) -> RefreshRun:
    try:
        client = client or client_for(tenant)
        listing = fetch_listing(client)
    except (WixError, DecryptionError) as exc:
        return _failed(run, exc, calls=client.calls if client else 0, record=record)

    now = timezone.now()
    if _trusted(run, listing, client, now=now, record=record):
        return _logged(run)
    # Most refreshes find nothing to write, and learn it from one read outside a
    # transaction; the plan made from it is the one written (`mirror.write_site` makes it
    # again only if another writer changed the mirror in between).
    plan = mirror.plan_site(listing, mirror.stored_fingerprints(tenant, now=now))
    if not plan.writes:
        with _writing(run, record, client):
            RefreshRun.objects.record(_finished(run, listing, client, unchanged=plan.unchanged))
        return _logged(run)
    with _one_writer(), transaction.atomic():
        written = mirror.write_site(plan, tenant, now=now)
        RefreshRun.objects.record(_finished(run, listing, client, **written.counts))
        # Once the run has its pk, which the history names.
        mirror.record_history(tenant, written, run=run, now=now)
        if record is not None:
            record(run, client.last_request_id)
    return _logged(run)


def _finished(run: RefreshRun, listing: Listing, client: WixClient, **counts: int) -> RefreshRun:
    """The run of a refresh that compared the mirror with the listing row by row: its
    digest is recorded, for the next refreshes to trust (`_trusted`)."""
    return run.finish(
        wix_calls=client.calls,
        failed_provider_ids=listing.connections.failed_provider_ids,
        listing_digest=listing.digest,
        **counts,
    )


def _trusted(
    run: RefreshRun,
    listing: Listing,
    client: WixClient,
    *,
    now: datetime,
    record: RunAudit | None = None,
) -> bool:
    """Record the run finished, with nothing changed, if Wix's answers are those a recent
    refresh compared the mirror with; return whether it did.

    A refresh that compares the mirror row by row (and writes what differs) records the
    digest of Wix's answers on its run. While later refreshes get the same bytes, within
    `mirror.DIGEST_TRUSTED_FOR`, nothing can differ: they need neither the comparison nor
    its read, and record no digest of their own. Anything else that writes the mirror
    forgets the digests (`mirror_connections`); a new FINGERPRINT_VERSION seeds them
    differently.
    """
    if not listing.digest:
        return False
    # Finished as unchanged before the digest is known to match: the INSERT is made of it.
    # If it does not match, the refresh finishes the run again, and `finish` sets every
    # field it set here. (A copy of the run costs tens of microseconds of CPU, on the path
    # most of a fleet's refreshes take.)
    run.finish(
        wix_calls=client.calls,
        failed_provider_ids=listing.connections.failed_provider_ids,
        unchanged=len(listing.connections.items),
    )
    with _writing(run, record, client):
        return RefreshRun.objects.create_if_digest_matches(
            run, digest=listing.digest, since=now - mirror.DIGEST_TRUSTED_FOR
        )


def _failed(
    run: RefreshRun, exc: Exception, *, calls: int, record: RunAudit | None = None
) -> RefreshRun:
    with _writing(run, record):
        RefreshRun.objects.record(run.fail(exc, wix_calls=calls))
    logger.warning(
        "Refresh of tenant %s failed: %s %s", run.tenant_id, run.error_code, run.error_message
    )
    return run


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


# SQLite has one writer at a time; see `_one_writer`.
_sqlite_writer = threading.Lock()


def _one_writer() -> AbstractContextManager[Any]:
    """On SQLite, a lock the threads of this process take around each write (a refresh's
    transaction, and its run's INSERT).

    Waiting for it hands over at once; waiting in SQLite's busy handler sleeps up to 100 ms
    between tries, which left the database idle between refreshes. Other processes still
    wait in the busy handler; PostgreSQL needs no lock.
    """
    if connections[router.db_for_write(Tenant)].vendor == "sqlite":
        return _sqlite_writer
    return nullcontext()


def _writing(
    run: RefreshRun, record: RunAudit | None, client: WixClient | None = None
) -> AbstractContextManager[Any]:
    """Around a one-statement write of the run: `_one_writer`, and when the run is audited,
    a transaction that writes its AuditEvent after it. An unaudited refresh (most of them)
    opens none."""
    if record is None:
        return _one_writer()
    return _audited_write(run, record, client)


@contextmanager
def _audited_write(run: RefreshRun, record: RunAudit, client: WixClient | None) -> Iterator[None]:
    with _one_writer(), transaction.atomic():
        yield
        # Not inserted: a digest that did not match (`_trusted`); the refresh goes on.
        if run.pk is not None:
            record(run, run.wix_request_id or (client.last_request_id if client else ""))


def _audit_run(run: RefreshRun, request_id: str, *, user, via: Via) -> None:
    failed = run.outcome == RefreshOutcome.FAILED
    audit.record(
        AuditAction.REFRESH_TENANT,
        user=user,
        via=via,
        tenant=run.tenant,
        target=run,
        parameters={"trigger": run.trigger},
        outcome=AuditOutcome.FAILED if failed else AuditOutcome.OK,
        message=f"{run.error_code}: {run.error_message}" if failed else _counts(run),
        wix_request_id=request_id,
    )


def _counts(run: RefreshRun) -> str:
    counts = (
        f"{run.new_count} new, {run.changed_count} changed, {run.removed_count} removed, "
        f"{run.unchanged_count} unchanged"
    )
    if run.outcome == RefreshOutcome.PARTIAL:
        return f"Partial (providers failed: {', '.join(run.failed_provider_ids)}): {counts}"
    return counts


def mirror_connections(tenant: Tenant, answers: Iterable[wix.Connection]) -> list[Connection]:
    """Mirror connections Wix just returned (after an action); return their rows in order.

    Nothing is marked removed: this is not a complete listing. Changes are recorded
    without a refresh run. Called inside a verb's transaction, it writes in it.
    """
    answers = list(answers)
    with transaction.atomic():
        written = mirror.write_answers(tenant, answers, now=timezone.now())
        # The mirror no longer matches the answers refreshes saw: the next one compares.
        RefreshRun.objects.forget_digests(tenant)
    # The rows as written, also those that did not change (a plan reads only what differs).
    pks = [written.pks[a.id] for a in answers]
    rows = Connection.objects.select_related("tenant", "provider", "schedule").in_bulk(pks)
    return [rows[pk] for pk in pks]
