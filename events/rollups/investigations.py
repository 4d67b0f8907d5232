"""Investigation rollups: per UTC day of event time, the investigations' count,
confidence sum and histogram bins (InvestigationDay), and per fact type the facts' count
and confidence sum (FactDayCount): METRICS "Investigations" over all history, a row per
day. A day's rows are recomputed from the day's investigations whenever one of them is
written or removed, under a lock on the day's row (refresh_investigation_days)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from django.db import connection

from ..metrics import HISTOGRAM_BINS
from ..models import Investigation, InvestigationDay
from .shared import day_sql

BIN_FIELDS = tuple(f"bin{i}" for i in range(10))


def _bins_sql(column: str) -> tuple[str, list[float]]:
    """The ten bin counts of `column` as SQL aggregates, with their parameters."""
    parts, params = [], []
    for lo, hi in HISTOGRAM_BINS:
        if hi is None:
            parts.append(f"COALESCE(SUM(CASE WHEN {column} >= %s THEN 1 ELSE 0 END), 0)")
            params.append(lo)
        else:
            parts.append(f"COALESCE(SUM(CASE WHEN {column} >= %s AND {column} < %s THEN 1 ELSE 0 END), 0)")
            params += [lo, hi]
    return ", ".join(parts), params


def _day_bounds(day: date) -> list:
    """[start, end) of a UTC day, as occurred_at parameters (an index range)."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    occurred_at = Investigation._meta.get_field("occurred_at")
    return [occurred_at.get_db_prep_value(t, connection) for t in (start, start + timedelta(days=1))]


def refresh_investigation_days(days: Iterable[date]) -> None:
    """Recompute the investigation rollups of each day from that day's investigations and
    their facts, after an investigation of the day was written or removed (a day holds
    tens of investigations: cheap, and exact whatever the order things happened in).

    Each day's InvestigationDay row is locked first, every day in one upsert in day order
    (no deadlock), and only then are the day's rows aggregated, in separate statements:
    on PostgreSQL (READ COMMITTED) their snapshots are taken after the lock was granted,
    so they see the investigations of every transaction that held it before (as
    monitors.refresh_monitor_pairs). The day's FactDayCount rows are written under the same lock.

    Per day: the update of its row, then delete and insert of its fact counts; plus the
    one locking upsert (none when there is no day)."""
    days = sorted(set(days))
    if not days:
        return
    day_field = InvestigationDay._meta.get_field("day")
    zeros = ", ".join(["0"] * (2 + len(BIN_FIELDS)))
    bins, bin_params = _bins_sql("confidence")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO events_investigationday (day, count, confidence_sum, {", ".join(BIN_FIELDS)})
            VALUES {", ".join([f"(%s, {zeros})"] * len(days))}
            ON CONFLICT (day) DO UPDATE SET count = events_investigationday.count
            """,
            [day_field.get_db_prep_value(day, connection) for day in days],
        )
        for day in days:
            bounds = _day_bounds(day)
            prepared_day = day_field.get_db_prep_value(day, connection)
            cursor.execute(
                f"""
                UPDATE events_investigationday
                   SET (count, confidence_sum, {", ".join(BIN_FIELDS)}) = (
                       SELECT COUNT(*), COALESCE(SUM(confidence), 0), {bins}
                         FROM events_investigation
                        WHERE occurred_at >= %s AND occurred_at < %s)
                 WHERE day = %s
                """,
                [*bin_params, *bounds, prepared_day],
            )
            cursor.execute("DELETE FROM events_factdaycount WHERE day = %s", [prepared_day])
            cursor.execute(
                """
                INSERT INTO events_factdaycount (day, fact_type, count, confidence_count, confidence_sum)
                SELECT %s, f.fact_type, COUNT(*), COUNT(f.confidence), COALESCE(SUM(f.confidence), 0)
                  FROM events_investigationfact f
                  JOIN events_investigation i ON i.id = f.investigation_id
                 WHERE i.occurred_at >= %s AND i.occurred_at < %s
                 GROUP BY f.fact_type
                """,
                [prepared_day, *bounds],
            )


def rebuild_investigation_rollups() -> None:
    """Every day's investigation rollups from all investigations and facts, grouped in SQL
    (a rebuild, on empty InvestigationDay and FactDayCount). The same
    UTC day as the receiver's day bounds (day_sql)."""
    cast = "CAST(day AS date)" if connection.vendor == "postgresql" else "day"
    bins, bin_params = _bins_sql("confidence")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO events_investigationday (day, count, confidence_sum, {", ".join(BIN_FIELDS)})
            SELECT {cast}, COUNT(*), COALESCE(SUM(confidence), 0), {bins} FROM (
                SELECT {day_sql("occurred_at")} AS day, confidence FROM events_investigation
            ) AS i
            GROUP BY day
            """,
            bin_params,
        )
        cursor.execute(
            f"""
            INSERT INTO events_factdaycount (day, fact_type, count, confidence_count, confidence_sum)
            SELECT {cast}, fact_type, COUNT(*), COUNT(confidence), COALESCE(SUM(confidence), 0) FROM (
                SELECT {day_sql("i.occurred_at")} AS day, f.fact_type, f.confidence
                  FROM events_investigationfact f
                  JOIN events_investigation i ON i.id = f.investigation_id
            ) AS f
            GROUP BY day, fact_type
            """
        )
