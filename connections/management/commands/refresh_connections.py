"""`manage.py refresh_connections [--tenant ID_OR_SITE_ID ...] [--all] [--workers N]
[--queue] [--user USERNAME]`."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from django.db.models import Q

from connections.models import RefreshOutcome, RefreshRun, RefreshTrigger
from connections.runner import refresh_tenants
from connections.services import passes
from connections.services.errors import RefreshInProgress, TenantInactive
from connections.services.queue import tenant_refresh_queue
from connections.services.refresh import tenant_refresh
from connections.tasks import LockUnavailable
from tenants.management.inputs import MAX_ID, acting_user, add_acting_user, one_line_errors
from tenants.models import Tenant, Via

DEFAULT_WORKERS = 4
# The progress line is redrawn at most this often (and always for the last tenant).
PROGRESS_INTERVAL_SECONDS = 0.1
PROGRESS_WIDTH = 30


@dataclass
class Summary:
    """What a batch of refreshes did, added up."""

    ok: int = 0
    partial: int = 0
    failed: int = 0
    new: int = 0
    changed: int = 0
    removed: int = 0
    wix_calls: int = 0

    @classmethod
    def of(cls, runs: Iterable[RefreshRun]) -> Summary:
        summary = cls()
        for run in runs:
            summary.add(run)
        return summary

    @property
    def done(self) -> int:
        return self.ok + self.partial + self.failed

    def add(self, run: RefreshRun) -> None:
        if run.outcome == RefreshOutcome.OK:
            self.ok += 1
        elif run.outcome == RefreshOutcome.PARTIAL:
            self.partial += 1
        else:
            self.failed += 1
        self.new += run.new_count
        self.changed += run.changed_count
        self.removed += run.removed_count
        self.wix_calls += run.wix_calls


class ProgressBar:
    """One carriage-return line: bar, done/total, outcomes so far, elapsed time."""

    def __init__(self, out: OutputWrapper, total: int, *, started: float) -> None:
        self.out = out
        self.total = total
        self.started = started
        self.drawn_at = 0.0

    def update(self, summary: Summary) -> None:
        now = time.monotonic()
        if summary.done < self.total and now - self.drawn_at < PROGRESS_INTERVAL_SECONDS:
            return
        self.drawn_at = now
        filled = PROGRESS_WIDTH * summary.done // self.total
        bar = "#" * filled + "." * (PROGRESS_WIDTH - filled)
        self.out.write(
            f"\r[{bar}] {summary.done}/{self.total}  ok {summary.ok}  "
            f"partial {summary.partial}  failed {summary.failed}  {now - self.started:.1f} s",
            ending="",
        )
        self.out.flush()

    def finish(self) -> None:
        self.out.write("")


class Command(BaseCommand):
    help = (
        "Refresh the mirror of the chosen tenants' Wix connections now, on worker threads, "
        "and print what changed; or, with --queue, queue their refreshes for the workers. "
        "Each is audited. Exits with status 1 if any tenant's refresh failed or was not queued."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        return one_line_errors(super().create_parser(prog_name, subcommand, **kwargs))

    def add_arguments(self, parser):
        parser.add_argument(
            "--tenant",
            action="extend",
            nargs="+",
            default=[],
            dest="tenant_refs",
            metavar="ID_OR_SITE_ID",
            help="A tenant's id or Wix site id (repeatable). Inactive tenants are refreshed "
            "when named.",
        )
        parser.add_argument(
            "--all",
            action="store_true",
            dest="all_tenants",
            help="Every active tenant, as one refresh pass (which /healthz counts, as it "
            "counts beat's).",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=DEFAULT_WORKERS,
            help=f"Tenants refreshed at once (default {DEFAULT_WORKERS}).",
        )
        parser.add_argument(
            "--queue",
            action="store_true",
            help="Queue the refreshes for the Celery workers (as the admin's Refresh now does) "
            "instead of running them here.",
        )
        add_acting_user(parser)

    def handle(self, *args, tenant_refs, all_tenants, workers, queue, **options):
        if workers < 1:
            raise CommandError("--workers must be at least 1.")
        user = acting_user(options["user"])
        tenants = self._chosen(tenant_refs, all_tenants=all_tenants)
        if not tenants:
            self.stdout.write("No active tenants to refresh.")
            return
        if queue:
            self._queue(tenants, user=user)
            return

        started = time.monotonic()
        bar = ProgressBar(self.stdout, len(tenants), started=started)
        tty = self.stdout.isatty()
        summary = Summary()
        failed: list[RefreshRun] = []
        # Every active tenant refreshed once is a pass, as beat's is (`tasks.refresh_all`).
        refresh_pass = (
            passes.pass_start(len(tenants), trigger=RefreshTrigger.COMMAND) if all_tenants else None
        )
        refresh = partial(
            tenant_refresh,
            user=user,
            via=Via.COMMAND,
            refresh_pass_id=refresh_pass.pk if refresh_pass else None,
        )
        try:
            for run in refresh_tenants(
                tenants, workers=workers, trigger=RefreshTrigger.COMMAND, refresh=refresh
            ):
                if refresh_pass is not None:
                    passes.pass_tenant_done(refresh_pass.pk)
                summary.add(run)
                if run.outcome == RefreshOutcome.FAILED:
                    failed.append(run)
                if tty:
                    bar.update(summary)
        finally:
            # Interrupted (Ctrl-C): the pass ends now, not completed.
            if refresh_pass is not None and summary.done < len(tenants):
                passes.pass_close(refresh_pass)
        if tty:
            bar.finish()
        self._report(summary, failed, elapsed=time.monotonic() - started)
        if failed:
            raise CommandError(f"{len(failed)} of {len(tenants)} tenants failed to refresh.")

    def _queue(self, tenants: list[Tenant], *, user) -> None:
        """Queue each tenant's refresh; one line each; CommandError if any was not queued."""
        refused = 0
        for tenant in tenants:
            try:
                job = tenant_refresh_queue(tenant, user=user, via=Via.COMMAND)
            except (TenantInactive, RefreshInProgress, LockUnavailable) as exc:
                refused += 1
                self.stderr.write(f"{tenant.name} (tenant {tenant.pk}): not queued. {exc}")
            else:
                self.stdout.write(f"{tenant.name} (tenant {tenant.pk}): queued, job {job.pk}.")
        if refused:
            raise CommandError(f"{refused} of {len(tenants)} tenants were not queued.")

    def _chosen(self, refs: list[str], *, all_tenants: bool) -> list[Tenant]:
        tenants = Tenant.objects.select_related("wix_app").order_by("pk")
        if all_tenants and refs:
            raise CommandError("Pass either --tenant or --all, not both.")
        if all_tenants:
            return list(tenants.active())
        if not refs:
            raise CommandError("Name the tenants to refresh with --tenant ID_OR_SITE_ID, or --all.")
        # No tenant has an id beyond 64 bits: an unknown tenant, not a query to refuse.
        pks = {int(ref) for ref in refs if ref.isdigit() and int(ref) <= MAX_ID}
        site_ids = {ref.lower() for ref in refs if not ref.isdigit()}
        found = tenants.filter(Q(pk__in=pks) | Q(site_id__in=site_ids))
        by_ref = {str(t.pk): t for t in found} | {t.site_id: t for t in found}
        unknown = [ref for ref in refs if ref.lower() not in by_ref]
        if unknown:
            raise CommandError(f"Unknown tenant: {', '.join(unknown)}.")
        chosen = {by_ref[ref.lower()].pk: by_ref[ref.lower()] for ref in refs}
        return list(chosen.values())

    def _report(self, summary: Summary, failed: list[RefreshRun], *, elapsed: float) -> None:
        rows = (
            ("Tenants ok", summary.ok),
            ("Tenants partial", summary.partial),
            ("Tenants failed", summary.failed),
            ("Connections new", summary.new),
            ("Connections changed", summary.changed),
            ("Connections removed", summary.removed),
            ("Wix calls", summary.wix_calls),
            ("Time", f"{elapsed:.1f} s"),
        )
        for label, value in rows:
            self.stdout.write(f"{label:<20}{value:>10}")
        if failed:
            self.stdout.write("\nFailed:")
            for run in failed:
                self.stdout.write(
                    f"  {run.tenant.name} (tenant {run.tenant_id}): "
                    f"{run.error_code}: {run.error_message}"
                )
