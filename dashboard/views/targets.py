"""Owners' targets on the codeowners pages (METRICS "Owner targets"): the columns and
sort of the codeowners table, the targets section of an owner's page. Kept apart from
views/owners.py so that the pages' other sections stay as they are."""

from __future__ import annotations

from typing import Any

from ..charts.targets import attainment_trend
from ..forms import Scope
from ..selectors import targets as selectors
from ..selectors.owners import severity_order

# The codeowners table's sorts by target: the worst first (no figure last); `sort` absent
# or unknown: most flaky and broken first (owner_stats' order).
SORTS = ("triage", "fix", "breaching")


def _sort_key(kind: str):
    def key(row: dict[str, Any]) -> tuple:
        figures: selectors.OwnerTargets = row["targets"]
        if kind == "breaching":
            first: tuple = (-figures.breaching,)
        else:
            share = getattr(figures, f"{kind}_attainment")
            first = (share is None, share or 0.0)
        return (*first, *severity_order(row))

    return key


def codeowners_context(rows: list[dict[str, Any]], scope: Scope, sort: str | None) -> dict[str, Any]:
    """The codeowners rows with their targets' figures (row["targets"]), in the order
    `sort` asks for, the sort links of the targets' columns and the default targets. Two
    queries."""
    targets = selectors.targets_by_owner()
    figures = selectors.owner_targets(period=scope.period, repository=scope.repository_id, targets=targets)
    for row in rows:
        key = row["owner_key"]
        row["targets"] = figures.get(key) or selectors.no_figures(key, targets)
        row["breaching_url"] = row["url"] + "#breaching"
    if sort in SORTS:
        rows = sorted(rows, key=_sort_key(sort))
    # Query-only links ("?sort=fix&period=all"): the same page, and no extra link to
    # /codeowners/ in the table beside the owners' own. "severity": the default order.
    links = {
        kind: {
            # A click on the sorted column goes back to the default order.
            "url": scope.url(f"?sort={'severity' if sort == kind else kind}"),
            "active": sort == kind,
        }
        for kind in SORTS
    }
    return {"owners": rows, "target_sorts": links, "default_targets": targets[0]}


def owner_section(key: str, scope: Scope) -> dict[str, Any]:
    """The owner's page: its targets (own or default), attainment over the period, the
    weekly trend chart, and the episodes breaching a target now. Four queries."""
    targets = selectors.targets_by_owner()
    period, repository = scope.period, scope.repository_id
    figures = selectors.owner_targets(period=period, repository=repository, owner_key=key, targets=targets)
    own = figures.get(key) or selectors.no_figures(key, targets)
    weeks = selectors.weekly_attainment(owner_key=key, period=period, repository=repository, targets=targets)
    breaching = selectors.breaching_episodes(
        owner_key=key, now=period.now, repository=repository, targets=targets
    )
    return {
        "owner_targets": own,
        "targets_chart": attainment_trend(
            weeks, triage_days=own.targets.triage_days, fix_days=own.targets.fix_days
        ),
        "trend_weeks_from": selectors.trend_start(period),
        "breaching_episodes": breaching,
        "breaching_shown": selectors.BREACHING_SHOWN,
    }
