"""Quarantined since (METRICS "Quarantined since"): for a quarantined test, the event
time of the first event of its current unbroken run of events carrying
`quarantined: true`.

Every history row keeps its event's quarantined flag (null: the payload did not send
one), so the run is read from the test's history: its first event carrying `true` after
the latest event carrying `false`. Recomputed in SQL for the tests whose events of a
batch carried a flag (refresh.Stale), and for every quarantined test by a rebuild; as a
function of the set of history rows, it is the same whatever the order they came in.

Two events of one event time, one `true` and one `false`: the `false` is taken as the
later (the run starts after it). Should the test's flag guard have taken the `true`
(larger svix id), no `true` is left after the `false` at that time, and the flag's own
event time (`quarantined_at`) is the start.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import connection

from .. import sql
from ..models import Investigation, MonitorEvent, QuarantineChange, StatusChange, TestCase

# The history relations whose rows carry an event's quarantined flag.
FLAGGED = (StatusChange, MonitorEvent, Investigation, QuarantineChange)
# Before any plausible event time (METRICS: 2000-01-01): "no `false` event".
_NEVER = datetime(1900, 1, 1, tzinfo=UTC)


def _flags_of_test(test_column: str) -> str:
    """(occurred_at, quarantined) of every flagged history row of the test in `test_column`."""
    return " UNION ALL ".join(
        f"SELECT occurred_at, quarantined FROM {model._meta.db_table}"
        f" WHERE test_case_id = {test_column} AND quarantined IS NOT NULL"
        for model in FLAGGED
    )


def _update_sql(where: str) -> str:
    table = TestCase._meta.db_table
    flags = _flags_of_test(f"{table}.id")
    return f"""
        UPDATE {table} SET quarantined_since = CASE WHEN quarantined THEN COALESCE(
            (SELECT MIN(r.occurred_at) FROM ({flags}) r
              WHERE r.quarantined AND r.occurred_at > COALESCE(
                  (SELECT MAX(f.occurred_at) FROM ({flags}) f WHERE NOT f.quarantined), %s)),
            quarantined_at) ELSE NULL END
        WHERE {where}
    """


# Tests per UPDATE ... WHERE id IN (...): stays under SQLite's variable limit.
CHUNK = 500


def refresh_quarantined_since(test_ids: Iterable[uuid.UUID]) -> None:
    """Recompute quarantined_since of these tests (their rows are locked by the batch)."""
    ids = sorted(set(test_ids))
    never = connection.ops.adapt_datetimefield_value(_NEVER)
    with connection.cursor() as cursor:
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            placeholders = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                # Only the quarantined (or just released) ones: the others keep null,
                # and their rows are not rewritten.
                _update_sql(f"id IN ({placeholders}) AND (quarantined OR quarantined_since IS NOT NULL)"),
                [never, *sql.adapt_many(TestCase, "id", chunk)],
            )


def rebuild_quarantined_since() -> None:
    """Compute quarantined_since of every quarantined test (a rebuild: all are null)."""
    with connection.cursor() as cursor:
        cursor.execute(_update_sql("quarantined"), [connection.ops.adapt_datetimefield_value(_NEVER)])
