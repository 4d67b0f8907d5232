"""Building blocks of the admin that are not specific to one model admin.

Everything here exists so that the big change lists (test cases, deliveries, history)
stay fast with 100,000+ rows: a bounded number of queries per page, none per row, and no
full scan where an index can answer.
"""

from __future__ import annotations

import uuid
from functools import cached_property
from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Func, IntegerField, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from events.palette import STATUS_COLORS

# ---------------------------------------------------------------- counting


class EstimatedCountPaginator(Paginator):
    """A paginator whose unfiltered count on a large PostgreSQL table is an estimate.

    `SELECT count(*)` has to visit every row on PostgreSQL (MVCC), so an admin change
    list over a big table spends most of its time counting. When the change list shows
    the whole table (no filter, no search) and PostgreSQL's planner statistics say the
    table is large, the statistics' row estimate (`pg_class.reltuples`, refreshed by
    autovacuum/ANALYZE) is used instead. Filtered lists, small tables and other
    databases get the exact count.
    """

    # Below this many rows an exact count is cheap enough and always right.
    estimate_threshold = 100_000

    @cached_property
    def count(self) -> int:
        estimate = self._estimated_count()
        if estimate is not None:
            return estimate
        return super().count

    def _estimated_count(self) -> int | None:
        qs = self.object_list
        if not isinstance(qs, QuerySet):
            return None
        query = qs.query
        if query.where or query.combinator or query.distinct or query.is_sliced:
            return None
        connection = connections[qs.db]
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                [connection.ops.quote_name(qs.model._meta.db_table)],
            )
            row = cursor.fetchone()
        return self.usable_estimate(row[0] if row else None)

    @classmethod
    def usable_estimate(cls, reltuples: float | None) -> int | None:
        """The estimate when the table is large, else None (count exactly).
        reltuples is -1 for a table never vacuumed or analysed (PostgreSQL 14+)."""
        if reltuples is None or reltuples < 0 or reltuples <= cls.estimate_threshold:
            return None
        return int(reltuples)


class OctetLength(Func):
    """Size in bytes of a text column (`Length` counts characters)."""

    function = "OCTET_LENGTH"
    output_field = IntegerField()

    def as_sqlite(self, compiler, connection, **extra_context):
        # SQLite < 3.43 has no OCTET_LENGTH; a BLOB's length is its size in bytes.
        return self.as_sql(
            compiler, connection, template="LENGTH(CAST(%(expressions)s AS BLOB))", **extra_context
        )


# ---------------------------------------------------------------- input


def parse_uuid(term: str) -> uuid.UUID | None:
    """The search term as a UUID, or None (accepts the usual spellings of one)."""
    term = term.strip()
    if len(term) not in (32, 36, 38, 45):
        return None
    try:
        return uuid.UUID(term)
    except ValueError:
        return None


# ---------------------------------------------------------------- output

# The dashboard's status palette (events/palette.py; white text passes WCAG AA on each).
STATUS_COLOURS = STATUS_COLORS
# Delivery outcomes are not statuses: outlined, neutral pills; the ones to look at in red.
OUTCOME_COLOURS = {"invalid": "#a61e1e", "failed": "#a61e1e"}
NEUTRAL_TEXT = "#1d2330"


def badge(text: str, colour: str) -> str:
    return format_html(
        '<span class="fb-badge" style="display:inline-block;padding:1px 8px;border-radius:9px;'
        'background:{};color:#fff;font-weight:600;font-size:11px;line-height:16px;white-space:nowrap">{}</span>',
        colour,
        text,
    )


def outcome_badge(outcome: str, text: str) -> str:
    colour = OUTCOME_COLOURS.get(outcome)
    return format_html(
        '<span class="fb-badge fb-outcome" style="display:inline-block;padding:0 7px;border-radius:9px;'
        "background:#fff;color:{};border:1px {} {};font-weight:{};font-size:11px;line-height:16px;"
        'white-space:nowrap">{}</span>',
        colour or NEUTRAL_TEXT,
        "dashed" if outcome == "pending" else "solid",
        colour or "#adb5bd",
        600 if colour else 500,
        text,
    )


def status_badge(status: str, label: str | None = None) -> str:
    return badge(label or status.title(), STATUS_COLOURS.get(status, "#5c6475"))


# ---------------------------------------------------------------- shared by the model admins

EMPTY = admin.site.empty_value_display  # what the admin shows for "no value"

NONE_VALUE = "__none__"  # list filter value for "(none)": never a real owner key or variant
UPDATE_CHUNK = 500  # rows per UPDATE ... WHERE pk IN (...): stays under SQLite's variable limit


def plural(n: int, singular: str, many: str | None = None) -> str:
    """ "1 test case", "2 test cases"."""
    return f"{n} {singular if n == 1 else (many or singular + 's')}"


def admin_link(obj: Any, text: Any = None) -> str:
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, obj if text is None else text)


def pre(text: str) -> str:
    return format_html(
        '<pre style="white-space:pre-wrap;word-break:break-word;max-height:40em;overflow:auto;'
        'margin:0;padding:8px;background:var(--darkened-bg);border:1px solid var(--hairline-color)">{}</pre>',
        text,
    )


def when(moment) -> str:
    """A compact, sortable time for wide lists (UTC, as the dashboard writes it); the
    full form, with the zone, in the tooltip."""
    if moment is None:
        return EMPTY
    moment = timezone.localtime(moment)
    return format_html(
        '<span style="white-space:nowrap" title="{}">{}</span>',
        date_format(moment, "DATETIME_FORMAT"),
        date_format(moment, "Y-m-d H:i"),
    )


def staff_users() -> QuerySet:
    User = get_user_model()
    return User.objects.filter(is_active=True, is_staff=True).order_by(User.USERNAME_FIELD)
