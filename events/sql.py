"""Plain SQL for the ingest hot path: statement text built from model metadata, values
always passed as parameters.

Why not the ORM there: a delivery is a handful of short statements, and building each
one through the ORM (Q objects, the compiler, model instances) cost more CPU than the
database spent running it (about 5 ms a delivery; see ../shared/DESIGN.md, "Speed
notes"). These helpers only build text and adapt values; which columns to write and
which guard decides are projection rules, and stay in the projection package.

Values are adapted by their model field (`get_db_prep_save`), exactly as the ORM would
send them: on SQLite datetimes become naive UTC text, UUIDs hex and JSON text; on
PostgreSQL they stay native. Both databases run the same text: `ON CONFLICT ... DO
NOTHING / DO UPDATE ... WHERE` and `RETURNING` exist in SQLite >= 3.35 and PostgreSQL.
Statements go through Django's cursor, so query logging and capture still see them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from django.db import connection, models
from django.db.models import F, Model
from django.db.models.functions import Collate


def seconds_between(start: str, end: str) -> str:
    """SQL for the seconds from `start` to `end` (two timestamp expressions)."""
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM ({end} - {start}))"
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


def in_code_point_order(expression: str) -> str:
    """SQL text of a text expression compared and sorted in code point order, the order of
    Python's str, which the projection breaks ties by (svix ids, owner spellings). A
    PostgreSQL database created with a language's collation (the postgres image's
    en_US.utf8) sorts "msg_a" before "msg_B"; "C" is byte order, which in UTF-8 is code
    point order. SQLite compares text bytewise already (BINARY)."""
    return f'{expression} COLLATE "C"' if connection.vendor == "postgresql" else expression


def code_point_ordered(name: str) -> Any:
    """The field `name` (a path such as "delivery__svix_id") for order_by or a lookup, in
    code point order (see `in_code_point_order`)."""
    return Collate(F(name), "C") if connection.vendor == "postgresql" else F(name)


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def concrete_field(model: type[Model], name: str) -> models.Field[Any, Any]:
    """The field `name` of `model` that has a column in its table (`get_field` also finds
    reverse relations and many-to-many fields, which have none)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise TypeError(f"{model.__name__}.{name} has no column in {model._meta.db_table}")
    return field


def column_name(field: models.Field[Any, Any]) -> str:
    """The unquoted column of a concrete field (see `concrete_field`)."""
    if field.column is None:
        raise TypeError(f"{field} has no column")
    return field.column


def column(model: type[Model], name: str) -> str:
    """The quoted column of a field, by field name (`repository` -> "repository_id")."""
    return connection.ops.quote_name(column_name(concrete_field(model, name)))


def adapt(model: type[Model], values: Mapping[str, Any]) -> list[Any]:
    """Parameters for `values` (field name -> Python value), in order, as the ORM sends them."""
    return [concrete_field(model, name).get_db_prep_save(value, connection) for name, value in values.items()]


def adapt_many(model: type[Model], name: str, values: Iterable[Any]) -> list[Any]:
    """Parameters for several values of one field (an IN list)."""
    field = concrete_field(model, name)
    return [field.get_db_prep_save(value, connection) for value in values]


@cache
def insert_sql(
    model: type[Model],
    names: tuple[str, ...],
    *,
    rows: int = 1,
    skip_existing: bool = False,
    returning: str = "",
) -> str:
    """INSERT of `rows` rows of the fields `names`; `skip_existing` adds ON CONFLICT DO
    NOTHING (any unique constraint), `returning` a RETURNING of that field's column.

    Cached per shape: the text depends on the model and field names only, never on values.
    """
    placeholders = "(" + ", ".join(["%s"] * len(names)) + ")"
    sql = (
        f"INSERT INTO {table(model)} ({', '.join(column(model, n) for n in names)}) "
        f"VALUES {', '.join([placeholders] * rows)}"
    )
    if skip_existing:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += f" RETURNING {column(model, returning)}"
    return sql


def insert(model: type[Model], values: Mapping[str, Any], *, skip_existing: bool = False) -> int:
    """Insert one row; returns how many rows were inserted (0 when skipped as existing)."""
    return execute(insert_sql(model, tuple(values), skip_existing=skip_existing), adapt(model, values))


def insert_many(
    model: type[Model], names: Sequence[str], rows: Iterable[Sequence[Any]], *, skip_existing: bool = False
) -> None:
    """Insert rows of `names` values in one statement (none when there are no rows).

    On PostgreSQL plain inserts go through COPY: a batch's history and rollup rows are
    hundreds of rows, and a multi-row INSERT of them cost more in building, quoting and
    parsing its text than the database spent storing them (bench/projector.py)."""
    fields = [concrete_field(model, name) for name in names]
    if connection.vendor == "postgresql" and not skip_existing:
        rows = list(rows)
        if rows:
            insert_rows(model, fields, rows)
        return
    params = [
        field.get_db_prep_save(value, connection)
        for row in rows
        for field, value in zip(fields, row, strict=True)
    ]
    if params:
        execute(
            insert_sql(model, tuple(names), rows=len(params) // len(names), skip_existing=skip_existing),
            params,
        )


def update_many(model: type[Model], names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Update existing rows: each row is the primary key then the values of `names`.

    PostgreSQL: one statement whatever the number of rows, the values as one array per
    column (`UPDATE ... FROM unnest(...)`: the text stays short, so building and parsing
    it costs nothing next to a VALUES list of thousands of literals). Elsewhere one
    UPDATE per row (SQLite runs in-process: statements are cheap)."""
    if not rows:
        return
    pk = model._meta.pk
    fields = [pk, *(concrete_field(model, name) for name in names)]
    adapted = [[f.get_db_prep_save(v, connection) for f, v in zip(fields, row, strict=True)] for row in rows]
    if connection.vendor == "postgresql":
        by_column = [[row[i] for row in adapted] for i in range(len(fields))]
        execute(_update_many_sql(model, tuple(names)), by_column)
        return
    sets = ", ".join(f"{column(model, n)} = %s" for n in names)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table(model)} SET {sets} WHERE {connection.ops.quote_name(column_name(pk))} = %s",
            [[*row[1:], row[0]] for row in adapted],
        )


def _array_type(field: models.Field[Any, Any]) -> str:
    db_type = field.cast_db_type(connection) or "text"
    return "text" if db_type.startswith("varchar") else db_type


@cache
def _update_many_sql(model: type[Model], names: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    columns = [model._meta.pk, *(concrete_field(model, n) for n in names)]
    # Character columns travel as text[]: a cast to varchar(N) would cut an over-long value
    # silently, an assignment to the column refuses it, as an INSERT does.
    arrays = ", ".join(f"%s::{_array_type(f)}[]" for f in columns)
    aliases = ", ".join(quote(column_name(f)) for f in columns)
    sets = ", ".join(f"{quote(column_name(f))} = v.{quote(column_name(f))}" for f in columns[1:])
    key = quote(column_name(columns[0]))
    return (
        f"UPDATE {table(model)} AS t SET {sets} FROM unnest({arrays}) AS v({aliases}) WHERE t.{key} = v.{key}"
    )


def insert_instance(obj: Model, *, skip_existing: bool = False) -> bool:
    """Insert a model instance (every concrete field but an auto id), like
    `save(force_insert=True)` without the ORM's machinery, and set its id from RETURNING.

    With `skip_existing`, a row that conflicts is left alone and False is returned.
    """
    meta = obj._meta
    fields = [f for f in meta.concrete_fields if f is not meta.auto_field]
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    sql = insert_sql(
        type(obj), tuple(f.name for f in fields), skip_existing=skip_existing, returning=meta.pk.name
    )
    row = fetch_one(sql, params)
    if row is None:
        return False
    if meta.auto_field is not None:
        obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = connection.alias
    return True


def execute(sql: str, params: Sequence[Any]) -> int:
    """Run one statement; returns the number of rows it changed."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def fetch_one(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def lock_not_available(exc: BaseException) -> bool:
    """Whether a database error is PostgreSQL's "lock not available" (SQLSTATE 55P03: a
    NOWAIT lock found taken, or a lock_timeout reached)."""
    return getattr(exc.__cause__, "sqlstate", None) == "55P03"


def fetch_all(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# Rows buffered per table before they are written. Bounds memory on a large rebuild.
BATCH_ROWS = 5000


class Table:
    """Rows for one model as tuples of column values, written in batches."""

    def __init__(self, model: type[models.Model], attnames: Sequence[str]):
        self.model = model
        self.fields = [concrete_field(model, name) for name in attnames]
        self.attnames = [f.attname for f in self.fields]
        self.rows: list[tuple[Any, ...]] = []
        self.written = 0

    def add(self, *values: Any) -> None:
        self.rows.append(values)
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            insert_rows(self.model, self.fields, self.rows)
            self.written += len(self.rows)
            self.rows = []


def insert_rows(
    model: type[models.Model], fields: Sequence[models.Field[Any, Any]], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert plain tuples (one value per field). PostgreSQL: COPY, about 10x faster than
    INSERT for large batches; other databases: `bulk_create` (portable value adaptation)."""
    if connection.vendor != "postgresql":
        attnames = [f.attname for f in fields]
        model._default_manager.bulk_create(
            [model(**dict(zip(attnames, row, strict=True))) for row in rows], batch_size=500
        )
        return
    json_positions = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column_name(f)) for f in fields)
    sql = f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
    if connection.queries_logged:  # COPY bypasses the cursor wrapper: count it like a statement
        connection.queries_log.append({"sql": f"{sql} -- {len(rows)} rows", "time": "0.000"})
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            if json_positions:
                values = list(row)
                for i in json_positions:
                    values[i] = fields[i].get_db_prep_save(values[i], connection)
                copy.write_row(values)
            else:
                copy.write_row(row)
