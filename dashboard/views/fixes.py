"""The "Fixes that held" sections (templates/dashboard/_fixes*.html): what the overview,
a codeowner's page and a test's page add to their context, built here once so that each
page adds one line."""

from __future__ import annotations

from typing import Any

from events.metrics import FIX_VERIFICATION_WINDOW, NO_OWNER, PERIOD_LABELS, CurvePoint, Period
from events.models import TestCase

from ..charts.fixes import relapse_curve as relapse_curve_chart
from ..selectors import fixes as selectors

OVERALL = "All tests"


def _marks(name: str, points: list[CurvePoint]) -> dict[str, Any]:
    return {"name": name, "marks": selectors.curve_marks(points)}


def fixes_section(
    *, period: Period, repository: int | None, owner_key: str | None = None, owner_name: str = ""
) -> dict:
    """The counts over the period and the relapse curve (all closed episodes): overall,
    or the owner's beside the overall one. Two queries (three for an owner)."""
    counts = selectors.fix_counts(period=period, repository=repository, owner_key=owner_key)
    overall = selectors.relapse_curve(now=period.now, repository=repository)
    curves = [(OVERALL, overall)]
    if owner_key is not None:
        own = selectors.relapse_curve(now=period.now, repository=repository, owner_key=owner_key)
        curves.insert(0, (owner_name or NO_OWNER, own))
    return {
        "counts": counts,
        "period_label": PERIOD_LABELS[period.name],
        "owner": owner_name if owner_key is not None else "",
        "has_curve": bool(curves[0][1]),
        "curve_chart": relapse_curve_chart(curves),
        "curve_table": [_marks(name, points) for name, points in curves if points],
        "window_days": FIX_VERIFICATION_WINDOW.days,
    }


def fixes_of_test(test: TestCase, *, period: Period) -> dict:
    """A test's fixes over the period and over all history. One query."""
    inside, all_time = selectors.fix_counts_of_test(test, period=period)
    rows = [(PERIOD_LABELS[period.name], inside)]
    if period.name != "all":
        rows.append((PERIOD_LABELS["all"], all_time))
    return {"rows": rows, "window_days": FIX_VERIFICATION_WINDOW.days}


def owners_fixes(rows: Any, *, period: Period, repository: int | None) -> dict:
    """Add each codeowners row's fixes over the period (under "fixes"); the context the
    table's header needs. One query. `rows`: the list of row dicts."""
    selectors.attach_fix_counts(rows, selectors.fix_counts_by_owner(period=period, repository=repository))
    return {"fixes_window_days": FIX_VERIFICATION_WINDOW.days}
