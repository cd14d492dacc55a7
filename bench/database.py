"""A fresh database for a benchmark: a SQLite file, or a PostgreSQL database created (dropped
first if it exists) and dropped again at the end."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Database:
    url: str
    label: str
    # PostgreSQL: how to reach the server, and the database's name, to drop and re-create it.
    server: dict[str, Any] | None = None
    # Kept at the end (a PostgreSQL database a later run reuses).
    keep: bool = False

    @property
    def is_postgres(self) -> bool:
        return self.server is not None

    @classmethod
    def create(
        cls, url: str | None, sqlite_file: Path, *, sqlite_label: str = "SQLite", keep: bool = False
    ) -> Database:
        """The database `url` names (postgres://...), new and empty unless `keep` finds it
        there already; without a URL, the SQLite file `sqlite_file`."""
        if not url:
            return cls(f"sqlite:///{sqlite_file.resolve()}", sqlite_label)
        import environ

        config = environ.Env.db_url_config(url)
        if config["ENGINE"] != "django.db.backends.postgresql":
            raise SystemExit("--database-url must be a postgres:// URL")
        server = {
            "dbname": "postgres",
            "user": config.get("USER") or None,
            "password": config.get("PASSWORD") or None,
            "host": config.get("HOST") or None,
            "port": config.get("PORT") or None,
            "autocommit": True,
        }
        database = cls(url, "PostgreSQL", {**server, "name": config["NAME"]}, keep=keep)
        with database._server() as (conn, name):
            version = conn.info.server_version
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
            ).fetchone()
            if not (keep and exists):
                _recreate(conn, name)
        database.label = f"PostgreSQL {version // 10000}"
        return database

    def recreate(self) -> None:
        """Start again from an empty database of the same name (Django must be set up)."""
        from django.db import connections

        connections.close_all()
        if not self.is_postgres:
            path = Path(self.url.removeprefix("sqlite:///"))
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
            return
        with self._server() as (conn, name):
            _recreate(conn, name)

    def drop(self) -> None:
        """Drop a PostgreSQL database (not a kept one); SQLite files go with their folder."""
        if not self.is_postgres or self.keep:
            return
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        import psycopg

        with self._server() as (conn, name):
            conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))

    @contextlib.contextmanager
    def _server(self):
        import psycopg

        server = dict(self.server or {})
        name = psycopg.sql.Identifier(server.pop("name"))
        with psycopg.connect(**server) as conn:
            yield conn, name


def _recreate(conn, name) -> None:
    import psycopg

    conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
    conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(name))
