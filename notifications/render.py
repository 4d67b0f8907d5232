"""What a message says: the content of a burst of alerts, of a test message, and its
storage as JSON (rendered once; every attempt sends the same). Escaping for each
destination is notifications.destinations' job: everything here is plain text."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils.html import strip_tags
from django.utils.text import Truncator
from markdown_it import MarkdownIt

from events import metrics
from events.models import Alert, Investigation, TestCase, TestCaseOwner

from .destinations import Link, Outgoing, Segment, Text

SUMMARY_CHARS = 280


def to_json(message: Outgoing) -> dict[str, Any]:
    return {
        "title": message.title,
        "paragraphs": [
            [
                {"label": s.label, "url": s.url}
                if isinstance(s, Link)
                else {"text": s.text, "strong": s.strong}
                for s in paragraph
            ]
            for paragraph in message.paragraphs
        ],
    }


def from_json(data: dict[str, Any]) -> Outgoing:
    return Outgoing(
        title=str(data.get("title", "")),
        paragraphs=tuple(
            tuple(
                Link(str(s["label"]), str(s["url"]))
                if "url" in s
                else Text(str(s["text"]), bool(s.get("strong")))
                for s in paragraph
            )
            for paragraph in data.get("paragraphs", [])
        ),
    )


def absolute(path: str) -> str:
    return settings.FLAKYBOARD_BASE_URL + path


def test_url(test_id: uuid.UUID | str) -> str:
    return absolute(reverse("dashboard:test-detail", args=[test_id]))


def plain_summary(markdown: str) -> str:
    """An investigation's Markdown summary as one line of plain text, shortened."""
    html = MarkdownIt("commonmark", {"html": False}).render(markdown or "")
    text = " ".join(strip_tags(html).split())
    # strip_tags leaves entities (&amp;): the destination escapes what it needs itself.
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&#x27;", "'")
    return Truncator(text.replace("&amp;", "&")).chars(SUMMARY_CHARS)


def _day(value: str | datetime | None) -> str:
    if value is None:
        return "?"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def reason(alert: Alert) -> str:
    """The reason, in one sentence (after the test's name)."""
    facts = alert.facts or {}
    if alert.kind == Alert.Kind.EPISODE_STARTED:
        status = facts.get("status", "FLAKY")
        if not facts.get("start_known", True):
            return f"was first seen already {status}."
        if facts.get("fix_relapsed"):
            return f"turned {status} again, within 14 days of its fix on {_day(facts.get('previous_end'))}: the fix relapsed."
        if facts.get("relapse"):
            return f"turned {status} again, within 30 days of its last episode's end on {_day(facts.get('previous_end'))} (a relapse)."
        return f"turned {status}."
    if alert.kind == Alert.Kind.FIX_VERIFIED:
        return (
            f"stayed out of any new episode for 14 days after its fix on {_day(facts.get('fixed_at'))}: "
            "the fix is verified."
        )
    if alert.kind == Alert.Kind.READY_TO_RELEASE:
        return (
            f"is quarantined, has been HEALTHY for {metrics.READY_TO_RELEASE_HEALTHY.days} days and has no "
            "active monitor: it can be released from quarantine."
        )
    if alert.kind == Alert.Kind.TARGET_MISSED:
        what = "triaged" if facts.get("target") == metrics.TARGET_TRIAGE else "fixed"
        return (
            f"missed {alert.owner_key or metrics.NO_OWNER}'s {facts.get('target', '')} target: its episode "
            f"started {_day(facts.get('episode_started'))} and was not {what} within {facts.get('days')} days."
        )
    return "needs attention."  # pragma: no cover - every kind is above


def alerts_message(alerts: Sequence[Alert], *, subscription_name: str) -> Outgoing:
    """One message for a burst of alerts: a paragraph per alert with the test, the reason,
    owners, status and since, the latest investigation's summary, and the links."""
    ids = {a.test_case_id for a in alerts}
    latest_summary = Subquery(
        Investigation.objects.filter(test_case=OuterRef("pk"))
        .order_by("-occurred_at")
        .values("markdown_summary")[:1]
    )
    tests = {
        t["pk"]: t
        for t in TestCase.objects.filter(pk__in=ids)
        .annotate(summary=latest_summary)
        .values("pk", "name", "status", "status_since", "html_url", "summary")
    }
    owners: dict[uuid.UUID, list[str]] = {}
    for test_id, name in (
        TestCaseOwner.objects.filter(test_case_id__in=ids)
        .values_list("test_case_id", "owner__name")
        .order_by("owner__key")
    ):
        owners.setdefault(test_id, []).append(name)
    paragraphs: list[tuple[Segment, ...]] = []
    for alert in alerts:
        test = tests.get(alert.test_case_id, {"name": str(alert.test_case_id)})
        line: list[Segment] = [Link(test["name"] or str(alert.test_case_id), test_url(alert.test_case_id))]
        line.append(Text(" " + reason(alert)))
        paragraphs.append(tuple(line))
        since = f" since {_day(test['status_since'])}" if test.get("status_since") else ""
        about: list[Segment] = [
            Text(
                f"Owners: {', '.join(owners.get(alert.test_case_id, [])) or metrics.NO_OWNER}. "
                f"Status: {test.get('status', '?')}{since}."
            )
        ]
        if test.get("html_url"):
            about += [Text(" "), Link("Open in Trunk", test["html_url"])]
        paragraphs.append(tuple(about))
        if test.get("summary") and alert.kind == Alert.Kind.EPISODE_STARTED:
            paragraphs.append((Text("Investigation: " + plain_summary(test["summary"])),))
    if len(alerts) == 1:
        first = alerts[0].test_case_id
        name = tests[first]["name"] if first in tests else "A test"
        title = f"{name}: {alerts[0].get_kind_display().lower()}"
    else:
        title = f"{len(alerts)} flaky-test alerts for {subscription_name}"
    return Outgoing(title=Truncator(title).chars(200), paragraphs=tuple(paragraphs))


def test_message(*, subscription_name: str) -> Outgoing:
    return Outgoing(
        title=f"flakyboard test message for {subscription_name}",
        paragraphs=(
            (
                Text(
                    "This destination works: flakyboard's alerts and digests for this subscription arrive here."
                ),
            ),
            (Link("Open flakyboard", absolute(reverse("dashboard:overview"))),),
        ),
    )
