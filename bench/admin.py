"""Server time of the admin's connection list over a large mirror, as a superuser sees it.

    .venv/bin/python bench/admin.py [--connections 200000] [--tenants 2000] [--runs 15]
        [--database-url postgres://postgres@127.0.0.1:5432/portal_bench_admin]

Creates a fresh database (SQLite in a temporary directory, or the PostgreSQL database named
in --database-url, created and dropped here), bulk-creates tenants, providers, schedules and
connections with realistic values, logs in a superuser through django.test.Client and times
`/admin/connections/connection/` with filters and searches applied, plus the admin index
(the dashboard). Prints the median and p95 of --runs requests and the query count of each
page; exits 1 if a connection list page misses the target.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.database import Database  # noqa: E402 (after the path is set)

# Target: the filtered connection list under 300 ms server time.
TARGET_MS = 300
CONNECTIONS_URL = "/admin/connections/connection/"
# The staff member timed too is an operator of this many tenants.
STAFF_TENANTS = 20

FIRST_NAMES = tuple(
    [
        "Ada",
        "Bo",
        "Cy",
        "Dee",
        "Eli",
        "Fay",
        "Gus",
        "Ivy",
        "Jo",
        "Kai",
        "Lu",
        "Mo",
        "Nia",
        "Oto",
        "Pia",
        "Quin",
        "Rae",
        "Sol",
    ]
)
LAST_NAMES = tuple(
    [
        "Ng",
        "Ortiz",
        "Park",
        "Quinn",
        "Rossi",
        "Silva",
        "Tanaka",
        "Umar",
        "Vega",
        "Wu",
        "Adams",
        "Baker",
        "Costa",
    ]
)
# (status, error reason, weight), as in the sandbox's generated fleets: mostly healthy.
STATUSES = (
    ("SYNCED", "", 80),
    ("CONNECTED", "", 5),
    ("SYNC_IN_PROGRESS", "", 5),
    ("DISCONNECTED", "", 4),
    ("ERROR", "TOKEN_REVOKED", 2),
    ("ERROR", "EXTERNAL_CALENDAR_DELETED", 2),
    ("ERROR", "EXTERNAL_CALENDAR_CREATION_FAILED", 2),
)
PROVIDERS = (
    # name, calendar type, connect methods, import capability, export capability, weight
    ("Google", "GOOGLE", ["OAUTH"], "SPECIFIC_CALENDARS", "DEDICATED_CALENDAR", 6),
    ("Microsoft", "MICROSOFT", ["OAUTH"], "SPECIFIC_CALENDARS", "PRIMARY_CALENDAR_ONLY", 3),
    ("Apple iCal", "I_CAL", ["CREDENTIALS"], "PRIMARY_CALENDAR_ONLY", "NOT_SUPPORTED", 1),
)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    urls = args.database_url or ["sqlite"]
    if len(urls) > 1:
        return run_each(args, urls)
    url = None if urls[0] == "sqlite" else urls[0]
    workdir = Path(tempfile.mkdtemp(prefix="portal-bench-admin-"))
    database = None
    try:
        database = Database.create(
            url, args.sqlite_file or workdir / "bench.sqlite3", keep=args.keep_database
        )
        setup_django(database)
        figures = run(args, database)
        if args.json:
            args.json.write_text(
                json.dumps({"database": database.label, "figures": [asdict(f) for f in figures]})
            )
        return report(args, database.label, figures)
    finally:
        if database is not None:
            database.drop()
        shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/admin.py", description=__doc__.split("\n\n")[0].strip()
    )
    parser.add_argument("--connections", type=int, default=200_000)
    parser.add_argument("--tenants", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=15, help="timed requests per page")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--sqlite-file",
        type=Path,
        help="keep the SQLite database in this file and reuse it when it exists "
        "(default: a temporary file, removed at the end)",
    )
    parser.add_argument(
        "--database-url",
        action="append",
        help="postgres://USER@HOST:PORT/NAME: a database created and dropped by the bench, "
        "or 'sqlite' (the default: SQLite in a temporary directory); give it twice to bench "
        "both and print them side by side",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="time every page this many times over (interleaved) and keep each page's best "
        "round, the one with the lowest p95: on a shared machine, the least disturbed one",
    )
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="PostgreSQL: keep the database at the end and reuse it when it exists",
    )
    return parser.parse_args(argv)


# --- A fresh database ----------------------------------------------------------------------


def setup_django(database: Database) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    os.environ["DATABASE_URL"] = database.url
    os.environ["DEBUG"] = "false"  # as in production: no query log kept in memory
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.conf import settings

    # WhiteNoise warns that STATIC_ROOT was never collected; the bench does not serve files.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)

    # No collectstatic here: {% static %} without the manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@contextlib.contextmanager
def timed(label: str) -> Iterator[None]:
    started = time.monotonic()
    print(f"{label} ...", end=" ", flush=True)
    yield
    print(f"{time.monotonic() - started:.1f} s", flush=True)


# --- Data ----------------------------------------------------------------------------------


def populate(args: argparse.Namespace) -> None:
    """Bulk-create tenants, their providers, and one schedule per connection."""
    from django.db import transaction

    from connections.models import Connection, Provider, Schedule
    from tenants.models import Tenant

    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    statuses = [(s, r) for s, r, _ in STATUSES]
    status_weights = [w for *_, w in STATUSES]
    provider_weights = [p[-1] for p in PROVIDERS]

    with transaction.atomic():
        Tenant.objects.bulk_create(
            [
                Tenant(
                    name=f"{rng.choice(LAST_NAMES)} {kind} {n:04d}",
                    site_id=guid(rng),
                    api_key="IST." + "k" * 40 + f"{n:08d}",
                )
                for n in range(1, args.tenants + 1)
                for kind in [rng.choice(("Salon", "Studio", "Physio", "Clinic", "Gym"))]
            ],
            batch_size=1000,
        )
        tenants = list(Tenant.objects.order_by("pk").values_list("pk", flat=True))
        Provider.objects.bulk_create(
            [
                Provider(
                    tenant_id=tenant_id,
                    wix_id=guid(rng),
                    name=name,
                    calendar_type=calendar_type,
                    connect_methods=methods,
                    import_capability=import_capability,
                    export_capability=export_capability,
                    can_update_sync_config=calendar_type != "I_CAL",
                    raw={"id": "", "name": name, "calendarType": calendar_type},
                    first_seen_at=now,
                    last_seen_at=now,
                )
                for tenant_id in tenants
                for name, calendar_type, methods, import_capability, export_capability, _ in (
                    PROVIDERS
                )
            ],
            batch_size=2000,
        )
        providers = {
            (p.tenant_id, p.calendar_type): p
            for p in Provider.objects.only("pk", "tenant_id", "calendar_type", "wix_id")
        }

        per_tenant, extra = divmod(args.connections, len(tenants))
        batch: list[tuple[Schedule, dict[str, Any]]] = []
        for index, tenant_id in enumerate(tenants):
            for _ in range(per_tenant + (1 if index < extra else 0)):
                name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
                schedule = Schedule(
                    tenant_id=tenant_id,
                    wix_id=guid(rng),
                    name=name,
                    external_id=guid(rng),
                    status="ACTIVE",
                    time_zone="Europe/Lisbon",
                    raw={"id": "", "name": name, "status": "ACTIVE"},
                    first_seen_at=now,
                    last_seen_at=now,
                )
                status, reason = rng.choices(statuses, status_weights)[0]
                provider = providers[(tenant_id, rng.choices(PROVIDERS, provider_weights)[0][1])]
                batch.append(
                    (
                        schedule,
                        {
                            "status": status,
                            "reason": reason,
                            "provider": provider,
                            "email": f"{name.lower().replace(' ', '.')}"
                            f"{rng.randrange(1000)}@example.com",
                            "changed": now - timedelta(minutes=rng.randrange(90 * 24 * 60)),
                            "removed": now if rng.random() < 0.02 else None,
                        },
                    )
                )
                if len(batch) >= 5000:
                    write_connections(batch, Schedule, Connection, rng, now)
                    batch = []
        if batch:
            write_connections(batch, Schedule, Connection, rng, now)
        write_refresh_runs(tenants, rng, now)


def write_refresh_runs(tenants: list[int], rng: random.Random, now: datetime) -> None:
    """Four refreshes per tenant, 15 minutes apart; a few failed last time, a few stalled."""
    from connections.models import RefreshRun

    runs = []
    for tenant_id in tenants:
        roll = rng.random()
        last = now - timedelta(minutes=rng.uniform(1, 14) + (180 if roll > 0.99 else 0))
        for n in range(4):
            finished = last - timedelta(minutes=15 * n)
            failed = n == 0 and roll < 0.02
            runs.append(
                RefreshRun(
                    tenant_id=tenant_id,
                    started_at=finished - timedelta(seconds=2),
                    finished_at=finished,
                    outcome="failed" if failed else "ok",
                    trigger="schedule",
                    unchanged_count=100,
                    error_code="WIX_UNAVAILABLE" if failed else "",
                    wix_calls=3,
                )
            )
    RefreshRun.objects.bulk_create(runs, batch_size=2000)


def write_connections(batch, Schedule, Connection, rng, now) -> None:
    schedules = Schedule.objects.bulk_create([s for s, _ in batch], batch_size=1000)
    connections = []
    for schedule, c in zip(schedules, (c for _, c in batch), strict=True):
        wix_id = "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0", k=43))
        provider = c["provider"]
        importing = c["status"] in ("SYNCED", "CONNECTED", "SYNC_IN_PROGRESS")
        exporting = importing and provider.calendar_type == "GOOGLE"
        sync_config = {
            "listEventFromCalendars": {"enabled": importing, "primaryCalendar": {}},
            "syncToCalendar": {"enabled": exporting, "dedicatedCalendar": {}}
            if provider.calendar_type == "GOOGLE"
            else {"enabled": False},
        }
        raw = {
            "id": wix_id,
            "calendarType": provider.calendar_type,
            "providerId": provider.wix_id,
            "scheduleId": schedule.wix_id,
            "userId": guid(rng),
            "appId": "13d21c63-b5ec-5912-8397-c3a5ddb27a97",
            "externalAccountEmail": c["email"],
            "status": c["status"],
            "errorReason": c["reason"] or None,
            "syncConfig": sync_config,
        }
        connections.append(
            Connection(
                tenant_id=schedule.tenant_id,
                wix_id=wix_id,
                provider=provider,
                schedule=schedule,
                provider_wix_id=provider.wix_id,
                schedule_wix_id=schedule.wix_id,
                calendar_type=provider.calendar_type,
                user_id=raw["userId"],
                app_id=raw["appId"],
                external_account_email=c["email"],
                status=c["status"],
                error_reason=c["reason"],
                import_enabled=importing,
                import_mode="PRIMARY" if importing else "",
                export_enabled=exporting,
                export_mode="DEDICATED" if exporting else "",
                raw=raw,
                first_seen_at=c["changed"],
                last_seen_at=now,
                removed_at=c["removed"],
                status_changed_at=c["changed"],
            )
        )
    Connection.objects.bulk_create(connections, batch_size=1000)


def guid(rng: random.Random) -> str:
    import uuid

    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# --- Measuring -------------------------------------------------------------------------------


@dataclass
class Figure:
    label: str
    url: str
    rows: int | None
    queries: int
    times_ms: list[float]

    @property
    def is_list(self) -> bool:
        return self.url.startswith(CONNECTIONS_URL)

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(client, label: str, url: str, runs: int) -> Figure:
    from django.db import connection
    from django.test.utils import (
        CaptureQueriesContext,
        setup_test_environment,
        teardown_test_environment,
    )

    # One untimed request, also the warm-up, with the template context kept for the row count.
    setup_test_environment()
    try:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        query_count = len(queries)
    finally:
        teardown_test_environment()
    if response.status_code != 200:
        raise SystemExit(
            f"MISSED: GET {url} answered {response.status_code}, not 200 "
            f"({response.get('Location', '') or response.content[:200]!r})."
        )
    cl = response.context.get("cl")
    rows = cl.result_count if cl is not None else None
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    return Figure(label, url, rows, query_count, times)


def run(args: argparse.Namespace, database: Database) -> list[Figure]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from connections.models import Connection
    from tenants.models import Role, Tenant, TenantMembership

    with timed(f"Migrating the {database.label} database"):
        call_command("migrate", verbosity=0)
    existing = Connection.objects.count()
    if existing:
        print(f"Reusing {existing} connections over {Tenant.objects.count()} tenants")
        args.connections, args.tenants = existing, Tenant.objects.count()
    else:
        with timed(f"Creating {args.tenants} tenants and {args.connections} connections"):
            populate(args)
        # PostgreSQL: VACUUM too, as autovacuum does soon after a load; until then the
        # visibility map is empty and every index-only scan (the list's counts) reads the table.
        maintenance = "VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE"
        with timed(maintenance), connection.cursor() as cursor:
            cursor.execute(maintenance)

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    staff, created = get_user_model().objects.get_or_create(
        username="bench-staff", defaults={"is_staff": True}
    )
    if created:
        TenantMembership.objects.bulk_create(
            TenantMembership(user=staff, tenant_id=pk, role=Role.OPERATOR)
            for pk in Tenant.objects.order_by("pk").values_list("pk", flat=True)[:STAFF_TENANTS]
        )
    staff_client = Client()
    staff_client.force_login(staff)

    tenant = Tenant.objects.order_by("pk")[args.tenants // 2]
    errors = Connection.objects.filter(status="ERROR", removed_at__isnull=True).order_by("pk")
    sample = errors[errors.count() // 2]
    email_part = sample.external_account_email.split("@")[0]
    pages = [
        ("Connection list, no filter", CONNECTIONS_URL),
        ("Status ERROR", f"{CONNECTIONS_URL}?status__exact=ERROR"),
        ("Status ERROR + one tenant", f"{CONNECTIONS_URL}?status__exact=ERROR&tenant={tenant.pk}"),
        (
            "ERROR + reason + Google + present",
            f"{CONNECTIONS_URL}?status__exact=ERROR&error_reason__exact=TOKEN_REVOKED"
            "&calendar_type__exact=GOOGLE",
        ),
        ("Search an email", f"{CONNECTIONS_URL}?q={email_part}"),
        (
            "Search a tenant name + ERROR",
            f"{CONNECTIONS_URL}?{urlencode({'q': tenant.name, 'status__exact': 'ERROR'})}",
        ),
        ("Search a Wix ID prefix", f"{CONNECTIONS_URL}?q={sample.wix_id[:10]}"),
        ("Search a first name (broad)", f"{CONNECTIONS_URL}?q={email_part.split('.')[0]}"),
        ("Admin index (dashboard)", "/admin/"),
    ]
    staff_pages = [
        (
            f"Staff of {STAFF_TENANTS} tenants: status ERROR",
            f"{CONNECTIONS_URL}?status__exact=ERROR",
        ),
        (f"Staff of {STAFF_TENANTS} tenants: dashboard", "/admin/"),
    ]
    timed_pages = [(client, *page) for page in pages] + [
        (staff_client, *page) for page in staff_pages
    ]
    best: dict[str, Figure] = {}
    for round_number in range(1, args.rounds + 1):
        what = f"Timing {len(timed_pages)} pages x {args.runs} runs"
        with timed(what if args.rounds == 1 else f"{what}, round {round_number}/{args.rounds}"):
            for who, label, url in timed_pages:
                figure = measure(who, label, url, args.runs)
                if label not in best or figure.p95 < best[label].p95:
                    best[label] = figure
    return list(best.values())


def report(args: argparse.Namespace, label: str, figures: list[Figure]) -> int:
    rounds = f", best of {args.rounds} rounds" if args.rounds > 1 else ""
    print(
        f"\n{args.connections} connections over {args.tenants} tenants, {label}, "
        f"{args.runs} runs each{rounds} (server time in ms), load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}\n"
    )
    print(f"{'page':<40}{'rows':>8}{'queries':>9}{'median':>9}{'p95':>9}   target")
    for f in figures:
        target = f"< {TARGET_MS}" if f.is_list else ""
        rows = "" if f.rows is None else f.rows
        print(f"{f.label:<40}{rows:>8}{f.queries:>9}{f.median:>9.0f}{f.p95:>9.0f}   {target}")
    return verdict({label: figures})


def verdict(figures_by_database: dict[str, list[Figure]]) -> int:
    """Print a MISSED line per connection list page over the target; return the exit status."""
    missed = [
        f"{label}: {f.label}: p95 {f.p95:.0f} ms (target < {TARGET_MS} ms) at {f.url}"
        for label, figures in figures_by_database.items()
        for f in figures
        if f.is_list and f.p95 >= TARGET_MS
    ]
    print()
    for line in missed:
        print(f"MISSED: {line}")
    if not missed:
        print(f"Every connection list page rendered under {TARGET_MS} ms (p95).")
    return 1 if missed else 0


def run_each(args: argparse.Namespace, urls: list[str]) -> int:
    """Bench each database in its own process, then print their figures side by side."""
    own = [
        *("--connections", str(args.connections), "--tenants", str(args.tenants)),
        *("--runs", str(args.runs), "--seed", str(args.seed), "--rounds", str(args.rounds)),
        *(["--keep-database"] if args.keep_database else []),
    ]
    results = {}
    with tempfile.TemporaryDirectory(prefix="portal-bench-admin-") as workdir:
        for n, url in enumerate(urls):
            out = Path(workdir) / f"{n}.json"
            command = [sys.executable, __file__, *own, "--database-url", url, "--json", str(out)]
            if url == "sqlite" and args.sqlite_file:
                command += ["--sqlite-file", str(args.sqlite_file)]
            print(f"$ bench/admin.py --database-url {url}", flush=True)
            subprocess.run(command, check=False)  # noqa: S603 (this very script)
            if not out.exists():
                raise SystemExit(f"MISSED: the bench of {url} did not finish.")
            answer = json.loads(out.read_text())
            results[answer["database"]] = [Figure(**f) for f in answer["figures"]]
            print(flush=True)
    labels = list(results)
    rounds = f", best of {args.rounds} rounds" if args.rounds > 1 else ""
    print(
        f"Side by side: {args.runs} runs per page{rounds}; queries, median and p95 in ms; "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}\n"
    )
    print(f"{'':<40}{'':>8}" + "".join(f"{label:>27}" for label in labels))
    print(f"{'page':<40}{'rows':>8}" + f"{'queries':>9}{'median':>9}{'p95':>9}" * len(labels))
    for index, first in enumerate(results[labels[0]]):
        row = [results[label][index] for label in labels]
        rows = "" if first.rows is None else first.rows
        cells = "".join(f"{f.queries:>9}{f.median:>9.0f}{f.p95:>9.0f}" for f in row)
        target = f"   < {TARGET_MS}" if first.is_list else ""
        print(f"{first.label:<40}{rows:>8}{cells}{target}")
    return verdict(results)


if __name__ == "__main__":
    sys.exit(main())
