"""The first triage action of each owner episode (METRICS "Time to triage": from an
episode's start to the first triage action on the test at or after that start), kept on
OwnerEpisode.first_triage_at so that the owners' targets over all history read a column
instead of looking up the triage history once per episode (55,000 lookups at L).

It depends on two histories that are written apart: the episodes (rewritten by the
rollups when a test's status changes, rebuilt by a rebuild) and the triage actions
(written by the triage service). Each writer recomputes it for the tests it touched,
with this one statement, under the tests' row locks (both take them first: LOCK ORDER),
so that neither misses the other's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db import connection

from .. import sql
from ..models import OwnerEpisode, TriageEvent

# Tests per UPDATE ... WHERE test_case_id IN (...): under SQLite's variable limit.
CHUNK = 500


def _update_sql(where: str) -> str:
    episodes, actions = OwnerEpisode._meta.db_table, TriageEvent._meta.db_table
    return (
        f"UPDATE {episodes} SET first_triage_at = (SELECT MIN(a.at) FROM {actions} a"  # noqa: S608 - table names only
        f" WHERE a.test_case_id = {episodes}.test_case_id AND a.at >= {episodes}.started_at)"
        f" WHERE {where}"
    )


def refresh_first_triage(test_ids: Iterable[uuid.UUID] | None = None) -> None:
    """Recompute first_triage_at of the owner episodes of these tests (None: all)."""
    with connection.cursor() as cursor:
        if test_ids is None:
            cursor.execute(_update_sql("1 = 1"))
            return
        ids = sorted(set(test_ids))
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            cursor.execute(
                _update_sql(f"test_case_id IN ({', '.join(['%s'] * len(chunk))})"),
                sql.adapt_many(OwnerEpisode, "test_case", chunk),
            )
