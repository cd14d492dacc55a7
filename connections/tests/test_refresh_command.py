"""`manage.py refresh_connections` against the sandbox: what it refreshes, prints and exits with."""

from __future__ import annotations

import io
import re
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from connections.models import Connection, RefreshRun
from connections.runner import refresh_tenants
from connections.services.refresh import tenant_refresh
from connections.tests.builders import add_site, google_staff
from tenants.tests.builders import sandbox_tenant

pytestmark = pytest.mark.django_db


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def aurora(wix_sandbox):
    return sandbox_tenant(wix_sandbox, add_site(wix_sandbox, "Salon Aurora", google_staff(2)))


@pytest.fixture
def brisa(wix_sandbox):
    return sandbox_tenant(wix_sandbox, add_site(wix_sandbox, "Studio Brisa", google_staff(3)))


def refresh(*args, stdout=None) -> str:
    out = stdout or io.StringIO()
    call_command("refresh_connections", *args, stdout=out)
    return out.getvalue()


def table(output: str) -> list[str]:
    """The summary lines, with the elapsed time replaced by "T" (right-aligned like it)."""
    return [
        re.sub(r"\d+\.\d s$", lambda time: "T".rjust(len(time[0])), line)
        for line in output.splitlines()
    ]


def test_refreshes_the_named_tenants_and_prints_the_summary(aurora, brisa):
    output = refresh("--tenant", str(aurora.pk), str(brisa.pk), "--workers", "1")

    assert table(output) == [
        "Tenants ok                   2",
        "Tenants partial              0",
        "Tenants failed               0",
        "Connections new              5",
        "Connections changed          0",
        "Connections removed          0",
        "Wix calls                    6",
        "Time                         T",
    ]
    assert Connection.objects.for_tenant(aurora).count() == 2
    assert Connection.objects.for_tenant(brisa).count() == 3
    assert set(RefreshRun.objects.values_list("trigger", flat=True)) == {"command"}


def test_tenant_by_site_id(aurora, brisa):
    output = refresh("--tenant", brisa.site_id.upper(), "--workers", "1")

    assert "Tenants ok                   1" in output
    assert not Connection.objects.for_tenant(aurora).exists()
    assert Connection.objects.for_tenant(brisa).count() == 3


def test_a_tenant_named_twice_is_refreshed_once(aurora):
    refresh("--tenant", str(aurora.pk), "--tenant", aurora.site_id, "--workers", "1")

    assert RefreshRun.objects.count() == 1


def test_all_refreshes_active_tenants_only(wix_sandbox, aurora, brisa):
    dormant = sandbox_tenant(wix_sandbox, add_site(wix_sandbox, "Closed Shop", google_staff(1)))
    dormant.is_active = False
    dormant.save()

    output = refresh("--all", "--workers", "1")

    assert "Tenants ok                   2" in output
    assert set(RefreshRun.objects.values_list("tenant", flat=True)) == {aurora.pk, brisa.pk}


def test_second_refresh_reports_changes_and_removals(wix_sandbox, aurora):
    refresh("--tenant", str(aurora.pk))
    site = wix_sandbox.site(aurora.site_id)
    first, second = list(site.connections)
    wix_sandbox.set_connection_error(site.id, first, "TOKEN_REVOKED")
    wix_sandbox.remove_connection(site.id, second)

    output = refresh("--tenant", str(aurora.pk))

    assert "Connections new              0" in output
    assert "Connections changed          1" in output
    assert "Connections removed          1" in output


def test_a_failed_tenant_is_listed_and_the_command_exits_1(wix_sandbox, aurora, brisa):
    wix_sandbox.faults(brisa.site_id).server_error(times=5, status=500)
    out = io.StringIO()

    with pytest.raises(CommandError, match=r"^1 of 2 tenants failed to refresh\.$"):
        call_command("refresh_connections", "--all", "--workers", "1", stdout=out)

    lines = table(out.getvalue())
    assert lines[:3] == [
        "Tenants ok                   1",
        "Tenants partial              0",
        "Tenants failed               1",
    ]
    assert lines[-2:] == [
        "Failed:",
        f"  Studio Brisa (tenant {brisa.pk}): INTERNAL: Wix failed on its side",
    ]


def test_wrong_credentials_are_reported_without_the_key(wix_sandbox, aurora):
    aurora.api_key = "IST.not-a-real-key-0000"
    aurora.save()
    out = io.StringIO()

    with pytest.raises(CommandError):
        call_command("refresh_connections", "--tenant", str(aurora.pk), stdout=out)

    assert f"  Salon Aurora (tenant {aurora.pk}): UNAUTHENTICATED: " in out.getvalue()
    assert "not-a-real-key" not in out.getvalue()


def test_exit_status_is_1_from_the_command_line(wix_sandbox, aurora, capsys):
    wix_sandbox.faults(aurora.site_id).server_error(times=5, status=500)

    with pytest.raises(SystemExit) as exited:
        from django.core.management import execute_from_command_line

        execute_from_command_line(["manage.py", "refresh_connections", "--tenant", str(aurora.pk)])

    assert exited.value.code == 1
    assert "Tenants failed               1" in capsys.readouterr().out


def test_progress_bar_on_a_terminal_only(aurora):
    terminal = refresh("--tenant", str(aurora.pk), stdout=Terminal())
    plain = refresh("--tenant", str(aurora.pk))

    assert re.match(r"^\r\[#{30}\] 1/1  ok 1  partial 0  failed 0  \d+\.\d s\nTenants ok", terminal)
    assert "\r" not in plain
    assert plain.startswith("Tenants ok")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Name the tenants to refresh with --tenant ID_OR_SITE_ID, or --all."),
        (("--all", "--tenant", "1"), "Pass either --tenant or --all, not both."),
        (("--all", "--workers", "0"), "--workers must be at least 1."),
        (("--tenant", "999999", "no-such-site"), "Unknown tenant: 999999, no-such-site."),
    ],
)
def test_bad_arguments(args, message):
    with pytest.raises(CommandError) as raised:
        call_command("refresh_connections", *args, stdout=io.StringIO())

    assert str(raised.value) == message
    assert not RefreshRun.objects.exists()


def test_no_active_tenants(aurora):
    aurora.is_active = False
    aurora.save()

    assert refresh("--all") == "No active tenants to refresh.\n"


def skip_on_in_memory_sqlite():
    """Shared-cache in-memory SQLite (the default test database) answers "database table is
    locked" to a second concurrent transaction instead of waiting; files and PostgreSQL wait."""
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("concurrent transactions need a file or PostgreSQL database")


@pytest.mark.django_db(transaction=True)
def test_several_workers_refresh_every_tenant_once(wix_sandbox):
    skip_on_in_memory_sqlite()
    tenants = [
        sandbox_tenant(wix_sandbox, add_site(wix_sandbox, f"Site {n}", google_staff(2)))
        for n in range(6)
    ]

    output = refresh("--all", "--workers", "3")

    assert "Tenants ok                   6" in output
    assert "Connections new             12" in output
    assert sorted(RefreshRun.objects.values_list("tenant", flat=True)) == sorted(
        t.pk for t in tenants
    )
    assert Connection.objects.count() == 12


@pytest.mark.django_db(transaction=True)
def test_worker_threads_take_each_tenant_once_and_survive_errors(wix_sandbox):
    tenants = [
        sandbox_tenant(wix_sandbox, add_site(wix_sandbox, f"Site {n}", google_staff(1)))
        for n in range(5)
    ]
    one_at_a_time = threading.Lock()  # see skip_on_in_memory_sqlite
    threads = set()

    def refresh_tenant(tenant, **kwargs):
        threads.add(threading.current_thread().name)
        if tenant == tenants[2]:
            raise RuntimeError("boom with a secret")
        with one_at_a_time:
            return tenant_refresh(tenant, **kwargs)

    runs = list(refresh_tenants(tenants, workers=3, trigger="test", refresh=refresh_tenant))

    assert sorted(run.tenant.pk for run in runs) == sorted(t.pk for t in tenants)
    assert sorted(run.outcome for run in runs) == ["failed", "ok", "ok", "ok", "ok"]
    failed = next(run for run in runs if run.outcome == "failed")
    assert (failed.error_code, failed.error_message) == (
        "RuntimeError",
        "Unexpected error; the traceback is in the log.",
    )
    assert threads <= {"refresh-0", "refresh-1", "refresh-2"}
    assert RefreshRun.objects.count() == 4
