"""The SQL of a refresh's hot path: what the ORM would send, for a fraction of its CPU.

A fleet refresh runs these statements thousands of times a minute, and on a small
machine the CPU the ORM spends compiling them (and psycopg spends parsing long statements)
was most of the refresh's cost. Each function here sends one plain statement, built once
per model from its meta (identifiers only, quoted) and run with parameters, and converts
values as the fields would. Everything else uses the ORM.

Private to the mirror: called by the model managers and methods (`connections.models`) and
by `mirror`'s writes, never by services.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache, partial
from typing import Any

from django.db import connections, models, router


def create(instance: models.Model) -> models.Model:
    """INSERT a new instance (as `save()` would, without signals) and return it, saved."""
    model = type(instance)
    meta = model._meta
    values = {f.attname: f.pre_save(instance, add=True) for f in meta.concrete_fields}
    del values[meta.pk.attname]
    (pk,) = insert(model, [values])
    return _saved(instance, pk, router.db_for_write(model))


def _saved(instance: models.Model, pk: Any, alias: str) -> models.Model:
    """Mark a just-inserted instance as saved, as `save()` would."""
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = alias
    return instance


def _column(model: type[models.Model], name: str, alias: str) -> str:
    """The quoted column of a model's field."""
    return connections[alias].ops.quote_name(model._meta.get_field(name).column)


def insert(model: type[models.Model], rows: list[dict[str, Any]]) -> list[int]:
    """INSERT rows (attname -> value, every column but the pk) and return their pks, in order.

    What `bulk_create` writes for plain values, without its per-value compilation (checks
    for expressions, pre_save, several conversion calls). Each column's conversion is
    chosen once per call.
    """
    if not rows:
        return []
    connection = connections[router.db_for_write(model)]
    if not connection.features.can_return_rows_from_bulk_insert:
        created = model.objects.bulk_create([model(**row) for row in rows])
        return [row.pk for row in created]
    meta = model._meta
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    if connection.vendor == "postgresql":
        return _insert_from_json(connection, model, fields, rows)
    names = [f.attname for f in fields]
    # One refresh writes the same few datetimes (its `now`) into every row: adapt each once.
    adapt_datetime = cache(connection.ops.adapt_datetimefield_value)
    to_db = [_db_converter(f, connection, adapt_datetime=adapt_datetime) for f in fields]
    qn = connection.ops.quote_name
    into = f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)})"
    returning, _ = connection.ops.return_insert_columns([meta.pk])
    size = max(connection.ops.bulk_batch_size(fields, rows), 1)
    pks: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            values = connection.ops.bulk_insert_sql(fields, [["%s"] * len(fields)] * len(batch))
            cursor.execute(
                f"{into} {values} {returning}",
                [
                    value if convert is None else convert(value)
                    for row in batch
                    for convert, value in zip(to_db, map(row.__getitem__, names), strict=True)
                ],
            )
            pks.extend(pk for pk, *_ in connection.ops.fetch_returned_insert_rows(cursor))
    return pks


def _insert_from_json(
    connection, model: type[models.Model], fields: list[models.Field], rows: list[dict[str, Any]]
) -> list[int]:
    """PostgreSQL: INSERT the rows sent as one JSON array (`jsonb_to_recordset`).

    One parameter, serialized by the json module's C encoder, and a statement text that is
    the same for any number of rows. Both alternatives cost far more CPU in psycopg: a
    VALUES list of placeholders (it re-parses a long statement's text on every call) and
    one array per column (as `bulk_create` sends them; its array dumper is pure Python).
    """
    # Datetimes go as ISO 8601 text, each distinct one formatted once.
    isoformat = cache(datetime.isoformat)
    document = json.dumps(
        [{f.column: row[f.attname] for f in fields} for row in rows],
        default=lambda value: _json_datetime(value, isoformat),
        separators=(",", ":"),
    )
    with connection.cursor() as cursor:
        cursor.execute(_insert_from_json_sql(model, connection.alias), [document])
        # Rows come back in the order of the array, as they do from bulk_create's UNNEST.
        return [pk for pk, *_ in cursor.fetchall()]


@cache
def _insert_from_json_sql(model: type[models.Model], alias: str) -> str:
    connection = connections[alias]
    meta = model._meta
    qn = connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    columns = ", ".join(qn(f.column) for f in fields)
    # Every column with its type; varchar(n) loses its length, the table checks it.
    record = ", ".join(f"{qn(f.column)} {f.db_type(connection).split('(')[0]}" for f in fields)
    returning, _ = connection.ops.return_insert_columns([meta.pk])
    into = f"INSERT INTO {qn(meta.db_table)} ({columns})"
    select = f"SELECT {columns} FROM jsonb_to_recordset(%s::jsonb) AS row({record})"  # noqa: S608
    return f"{into} {select} {returning}"


def _json_datetime(value: Any, isoformat: Callable[[datetime], str]) -> str:
    if isinstance(value, datetime):
        return isoformat(value)
    raise TypeError(f"{type(value).__name__} is not a column value this module writes")


def lock(model: type[models.Model], pk: Any) -> None:
    """Lock a row until the transaction ends (`select_for_update()`).

    Where the database has no row locks (SQLite), a write transaction already holds the
    whole database, and nothing is sent.
    """
    connection = connections[router.db_for_write(model)]
    if not connection.features.has_select_for_update:
        return
    with connection.cursor() as cursor:
        cursor.execute(_lock_sql(model, connection.alias), [pk])


@cache
def _lock_sql(model: type[models.Model], alias: str) -> str:
    qn = connections[alias].ops.quote_name
    table, pk = qn(model._meta.db_table), qn(model._meta.pk.column)
    return f"SELECT {pk} FROM {table} WHERE {pk} = %s FOR UPDATE"  # noqa: S608


def fingerprints(
    models_: Sequence[type[models.Model]], tenant_pk: int, *, seen_after: datetime
) -> dict[type[models.Model], dict[str, tuple[int, str, bool, bool]]]:
    """For each model, wix_id -> (pk, fingerprint, removed, last seen before `seen_after`) of
    the tenant's rows, in one query.

    A refresh's one read of every mirrored row: four small columns, so an unchanged site
    costs little more than this query.
    """
    connection = connections[router.db_for_read(models_[0])]
    stored: dict[type[models.Model], dict[str, tuple[int, str, bool, bool]]] = {
        model: {} for model in models_
    }
    by_index = list(stored.values())
    with connection.cursor() as cursor:
        cursor.execute(
            _fingerprints_sql(tuple(models_), connection.alias),
            [connection.ops.adapt_datetimefield_value(seen_after), tenant_pk] * len(models_),
        )
        for index, wix_id, pk, digest, removed, stale in cursor.fetchall():
            by_index[index][wix_id] = (pk, digest, bool(removed), bool(stale))
    return stored


@cache
def _fingerprints_sql(models_: tuple[type[models.Model], ...], alias: str) -> str:
    qn = connections[alias].ops.quote_name

    def select(index: int, model: type[models.Model]) -> str:
        meta = model._meta
        column = partial(_column, model, alias=alias)
        columns = ", ".join(
            (
                str(index),
                column("wix_id"),
                column(meta.pk.name),
                column("fingerprint"),
                f"{column('removed_at')} IS NOT NULL",
                f"{column('last_seen_at')} < %s",
            )
        )
        return f"SELECT {columns} FROM {qn(meta.db_table)} WHERE {column('tenant')} = %s"  # noqa: S608

    return " UNION ALL ".join(select(index, model) for index, model in enumerate(models_))


def create_if_trusted(run: models.Model, *, digest: str, since: datetime) -> bool:
    """INSERT a refresh run only if the tenant's latest run since `since` that recorded a
    `listing_digest` recorded `digest`; return whether it did. One statement:
    `INSERT ... SELECT ... WHERE (latest digest) = digest`, so an unchanged site's refresh
    checks the digest and records its run in one round trip."""
    model = type(run)
    connection = connections[router.db_for_write(model)]
    sql, fields = _create_if_trusted_sql(model, connection.alias)
    values = [f.get_db_prep_save(f.pre_save(run, add=True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [*values, run.tenant_id, connection.ops.adapt_datetimefield_value(since), digest],
        )
        row = cursor.fetchone()
    if row is None:
        return False
    _saved(run, row[0], connection.alias)
    return True


@cache
def _create_if_trusted_sql(model: type[models.Model], alias: str) -> tuple[str, list[models.Field]]:
    connection = connections[alias]
    qn = connection.ops.quote_name
    meta = model._meta
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    column = partial(_column, model, alias=alias)
    table, digest, started = qn(meta.db_table), column("listing_digest"), column("started_at")
    # The (tenant, -started_at) index reads the newest runs first.
    latest = (
        f"SELECT {digest} FROM {table} "  # noqa: S608
        f"WHERE {column('tenant')} = %s AND {started} >= %s AND {digest} <> '' "
        f"ORDER BY {started} DESC LIMIT 1"
    )
    columns = ", ".join(qn(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    returning, _ = connection.ops.return_insert_columns([meta.pk])
    sql = f"INSERT INTO {table} ({columns}) SELECT {placeholders} WHERE ({latest}) = %s {returning}"
    return sql, fields


# Columns whose Python values (str, bool, int, an id) go to the driver as they are.
_AS_IS = frozenset(
    {
        "BigIntegerField",
        "BooleanField",
        "CharField",
        "ForeignKey",
        "IntegerField",
        "PositiveIntegerField",
        "TextField",
    }
)


def _db_converter(
    f: models.Field, connection, *, adapt_datetime: Callable[[Any], Any]
) -> Callable[[Any], Any] | None:
    """How a value of `f` becomes a driver parameter (None: as it is)."""
    kind = f.get_internal_type()
    if kind in _AS_IS:
        return None
    if kind == "DateTimeField":
        return adapt_datetime
    return partial(f.get_db_prep_save, connection=connection)
