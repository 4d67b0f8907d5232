"""Helpers shared by the selectors: scoping by repository and owner, raw SQL, medians,
UTC days.

Medians are raw SQL on purpose (PostgreSQL has percentile_cont, SQLite has nothing): the
portable form is the average of the middle one or two rows by ROW_NUMBER() over COUNT().
It runs unchanged on SQLite (>= 3.25, window functions) and PostgreSQL.
"""

# SQL here is assembled from constant fragments only; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from datetime import UTC, date, datetime

from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.db.models.expressions import Combinable, NegatedExpression

from events.models import TestCaseOwner


def in_repository(field: str, repository: int | None) -> Q:
    return Q(**{field: repository}) if repository else Q()


def run_sql(query: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def median_sql(inner: str, group: str, value: str) -> str:
    """Median of `value` per `group` over the rows of `inner` (see module doc): the middle
    row, or the mean of the two middle rows for an even count."""
    if connection.vendor == "postgresql":
        # The same definition, as one ordered-set aggregate: about 3x faster than the
        # two window passes on a large group.
        return f"""
            SELECT {group}, percentile_cont(0.5) WITHIN GROUP (ORDER BY {value})
              FROM ({inner}) AS median_input GROUP BY {group}
        """
    return f"""
        SELECT {group}, AVG({value}) FROM (
            SELECT {group}, {value},
                   ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY {value}) AS rn,
                   COUNT(*) OVER (PARTITION BY {group}) AS cnt
            FROM ({inner}) AS median_input
        ) AS ranked
        WHERE rn IN ((cnt + 1) / 2, (cnt + 2) / 2)
        GROUP BY {group}
    """


def day_sql(expr: str) -> str:
    if connection.vendor == "postgresql":
        return f"(({expr}) AT TIME ZONE 'UTC')::date"
    return f"date({expr})"


def as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def as_datetime(value) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def owner_condition(owner_key: str, alias: str = "tc") -> tuple[str, list]:
    """SQL (and params) for "the test `alias` belongs to owner `owner_key`" ("" = no owner)."""
    if owner_key == "":
        return f"NOT EXISTS (SELECT 1 FROM events_testcaseowner ol WHERE ol.test_case_id = {alias}.id)", []
    return (
        f"""EXISTS (SELECT 1 FROM events_testcaseowner ol JOIN events_owner oo ON oo.id = ol.owner_id
                     WHERE ol.test_case_id = {alias}.id AND oo.key = %s)""",
        [owner_key],
    )


NO_OWNER_PARAM = "none"  # `owner=none`: tests without owners


def medians_at_offset(table: str, key: str, counts: list[tuple[str, int]]) -> dict[str, float]:
    """Per key, the median of `seconds` over its `n` rows (`counts`: (key, n), n > 0): the
    middle one or two rows (the mean of both for an even count, as median_sql) read at
    their offset in the table's (key, seconds) index, instead of ranking every row. One
    query, none without counts."""
    return mean_of_rows_at(table, key, [(k, None, None, 2 - n % 2, (n - 1) // 2) for k, n in counts])


def mean_of_rows_at(table: str, key: str, reads: list[tuple]) -> dict[str, float]:
    """Per key, the mean `seconds` of the rows read at an offset in the table's (key,
    seconds) index: each read is (key, low, high, limit, offset), its rows `limit` rows
    from `offset` among the key's rows with low <= seconds < high (None: unbounded). One
    query, none without reads."""
    if not reads:
        return {}
    parts, params = [], []
    for i, (value, low, high, limit, offset) in enumerate(reads):
        # LIMIT inside a UNION member needs the wrapping on SQLite.
        parts.append(
            f"""SELECT * FROM (
                SELECT {key}, seconds FROM {table}
                 WHERE {key} = %s AND seconds IS NOT NULL
                   {"AND seconds >= %s" if low is not None else ""}
                   {"AND seconds < %s" if high is not None else ""}
                 ORDER BY seconds LIMIT %s OFFSET %s) AS middle_{i}"""
        )
        params += [value, *(bound for bound in (low, high) if bound is not None), limit, offset]
    middle = " UNION ALL ".join(parts)
    return dict(run_sql(f"SELECT {key}, AVG(seconds) FROM ({middle}) AS m GROUP BY {key}", params))


def owned_by(owner: str, test_case: str = "pk") -> Exists | NegatedExpression[Combinable]:
    """The filter "the test at `test_case` (an OuterRef path) belongs to `owner`": an owner
    name in any case, or NO_OWNER_PARAM ("none") for tests without owners."""
    links = TestCaseOwner.objects.filter(test_case=OuterRef(test_case))
    if owner.casefold() == NO_OWNER_PARAM:
        return ~Exists(links)
    # Owners compare case-insensitively: filter on the normalised key (indexed).
    return Exists(links.filter(owner__key=owner.casefold()))
