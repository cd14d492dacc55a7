"""How the portal talks to PostgreSQL: parameters bound by the server, frequent statements
prepared, and one setting to turn both off for a connection pooler that cannot keep them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[2]

PRINT_OPTIONS = (
    "import django, json; django.setup(); from django.conf import settings; "
    "print(json.dumps(settings.DATABASES['default'].get('OPTIONS', {})))"
)


def database_options(**env: str) -> dict:
    """The database OPTIONS that settings.py builds for this environment."""
    result = subprocess.run(  # noqa: S603 (our own interpreter)
        [sys.executable, "-c", PRINT_OPTIONS],
        cwd=BASE_DIR,
        # The defaults, whatever the environment running the tests chose.
        env={
            **{k: v for k, v in os.environ.items() if k != "DATABASE_SERVER_SIDE_BINDING"},
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            **env,
        },
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


POSTGRES_URL = "postgres://portal@db.example:5432/portal"


def test_postgres_binds_parameters_on_the_server_and_prepares_frequent_statements():
    options = database_options(DATABASE_URL=POSTGRES_URL)

    assert options["server_side_binding"] is True
    assert options["prepare_threshold"] == 5


def test_one_setting_turns_binding_and_preparing_off_for_a_pooler():
    options = database_options(DATABASE_URL=POSTGRES_URL, DATABASE_SERVER_SIDE_BINDING="false")

    assert options["server_side_binding"] is False
    assert "prepare_threshold" not in options


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_a_statement_run_often_is_prepared_on_the_server():
    sql = "SELECT %s::int + 41"
    with connection.cursor() as cursor:
        for _ in range(6):
            cursor.execute(sql, [1])
            assert cursor.fetchone() == (42,)
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [statement for (statement,) in cursor.fetchall()]

    assert "SELECT $1::int + 41" in prepared
