"""Commands given values out of range answer one line on stderr and exit 1, no traceback."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    # LOG_LEVEL=WARNING: apps that log their start at INFO stay out of stderr.
    environ = {**os.environ, "LOG_LEVEL": "WARNING", **env}
    return subprocess.run(  # noqa: S603 (our own interpreter and manage.py)
        [sys.executable, str(MANAGE), *args, "--skip-checks"],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("create_api_token", "root", "--expiry", "99999999999"),
            "CommandError: argument --expiry: expected a number of days from 0 to 3650, "
            "not 99999999999.",
        ),
        (
            ("create_api_token", "root", "--expiry", "-1"),
            "CommandError: argument --expiry: expected a number of days from 0 to 3650, not -1.",
        ),
        (
            ("wix_sandbox", "--port", "99999"),
            "CommandError: argument --port: expected a port from 0 to 65535, not 99999.",
        ),
        (
            ("demo", "--sandbox-port", "-5"),
            "CommandError: argument --sandbox-port: expected a port from 0 to 65535, not -5.",
        ),
    ],
)
def test_out_of_range_arguments_are_one_line_and_exit_1(args, message):
    result = manage(*args)

    assert result.returncode == 1
    assert result.stderr == message + "\n"
    assert result.stdout == ""


def test_out_of_range_arguments_through_call_command_raise_command_error():
    with pytest.raises(CommandError, match=r"^Error: argument --expiry: expected a number"):
        call_command("create_api_token", "root", "--expiry", "99999999999")


@pytest.mark.django_db
def test_a_tenant_id_beyond_64_bits_is_an_unknown_tenant():
    with pytest.raises(CommandError) as raised:
        call_command(
            "refresh_connections", "--tenant", "99999999999999999999", stdout=io.StringIO()
        )

    assert str(raised.value) == "Unknown tenant: 99999999999999999999."


@pytest.mark.django_db
def test_create_api_token_refuses_users_who_are_not_staff(django_user_model):
    django_user_model.objects.create_user("plain")

    with pytest.raises(CommandError, match=r"^User 'plain' is not staff; the API would refuse"):
        call_command("create_api_token", "plain", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.mark.parametrize("url", ["junk://x", "postgres://u:secret-pw@h:notaport/db"])
def test_a_junk_database_url_is_one_line_and_exit_1(url):
    result = manage("check", DATABASE_URL=url)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "DATABASE_URL" in result.stderr
    assert "secret-pw" not in result.stderr
