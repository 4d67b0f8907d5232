"""The weekly digest of each digest subscription: due once per ISO week (after
FLAKYBOARD_DIGEST_WEEKDAY at FLAKYBOARD_DIGEST_HOUR, UTC), one message per subscription
and week (a unique key), with the same figures as the dashboard's digest page
(dashboard.selectors.digest)."""

from __future__ import annotations

import fnmatch
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse

from dashboard.selectors.digest import Digest, WeekFigure, weekly_digest
from events.metrics import NO_OWNER
from events.models import Owner, Repository

from . import render, sending
from .destinations import Link, Outgoing, Segment, Text
from .models import Message, Subscription

# A subscription naming many owners (a pattern) gets a section for each, up to this many.
MAX_SECTIONS = 10


def week_key(now: datetime) -> str:
    year, week, _ = now.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def is_due(now: datetime) -> bool:
    """Past this ISO week's send time (weekday and hour, UTC)."""
    now = now.astimezone(UTC)
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    send_at = monday + timedelta(
        days=settings.FLAKYBOARD_DIGEST_WEEKDAY, hours=settings.FLAKYBOARD_DIGEST_HOUR
    )
    return now >= send_at


def queue_digests(*, now: datetime) -> list[int]:
    """A digest message for each enabled digest subscription without one this week."""
    if not is_due(now):
        return []
    week = week_key(now)
    done = set(
        Message.objects.filter(kind=Message.Kind.DIGEST, key__endswith=f":{week}").values_list(
            "subscription_id", flat=True
        )
    )
    created = []
    for subscription in Subscription.objects.filter(enabled=True, mode=Subscription.Mode.DIGEST).exclude(
        pk__in=done
    ):
        content = digest_message(subscription, now=now)
        try:
            with transaction.atomic():
                message = sending.store_message(
                    subscription,
                    kind=Message.Kind.DIGEST,
                    key=f"digest:{subscription.pk}:{week}",
                    content=content,
                    now=now,
                )
                sending.enqueue_on_commit(message.pk)
        except IntegrityError:  # queued by another scheduler meanwhile
            continue
        created.append(message.pk)
    return created


def sections_of(subscription: Subscription) -> list[tuple[str | None, str, int | None]]:
    """(owner key, owner label, repository id) per section: every test when the
    subscription names no owner; patterns expand to the owners flakyboard knows."""
    owners: list[tuple[str | None, str]] = []
    patterns = [p.casefold() for p in subscription.owner_patterns()]
    if not patterns:
        owners = [(None, "every test")]
    for pattern in patterns:
        if pattern == NO_OWNER:
            owners.append(("", NO_OWNER))
        elif any(ch in pattern for ch in "*?["):
            known = Owner.objects.order_by("key").values_list("key", "name")
            owners += [(key, name) for key, name in known.iterator() if fnmatch.fnmatchcase(key, pattern)][
                :MAX_SECTIONS
            ]
        else:
            name = Owner.objects.filter(key=pattern).values_list("name", flat=True).first()
            owners.append((pattern, name or pattern))
    repositories: list[tuple[int | None, str]] = [(None, "")]
    if names := subscription.repository_names():
        repositories = [
            (pk, name) for pk, name in Repository.objects.filter(name__in=names).values_list("pk", "name")
        ] or [(-1, names[0])]
    seen: set[tuple[str | None, int | None]] = set()
    sections = []
    for key, label in owners:
        for repo_id, repo_name in repositories:
            if (key, repo_id) not in seen:
                seen.add((key, repo_id))
                sections.append((key, label + (f" in {repo_name}" if repo_name else ""), repo_id))
    return sections[:MAX_SECTIONS]


def _change(figure: WeekFigure) -> str:
    return f"{figure.change:+d} from last week"


def _tests_line(label: str, entries: list[tuple[str, str, str]]) -> tuple[Segment, ...]:
    segments: list[Segment] = [Text(label)]
    for i, (name, url, detail) in enumerate(entries):
        segments += [Text("; " if i else " "), Link(name, url), Text(f" ({detail})")]
    return tuple(segments)


def digest_paragraphs(digest: Digest, *, label: str, repository: int | None) -> list[tuple[Segment, ...]]:
    query: dict[str, str] = {}
    if digest.owner_key is not None:
        query["owner"] = digest.owner_key or "none"
    page = render.absolute(reverse("dashboard:digest") + ("?" + urlencode(query) if query else ""))
    new, fixes, targets = digest.new, digest.fixes, digest.targets
    paragraphs: list[tuple[Segment, ...]] = [
        (Text(label, strong=True), Text(" "), Link("Open the digest", page))
    ]
    paragraphs.append(
        (
            Text(
                f"New flaky or broken tests: {new.started.this_week} ({_change(new.started)}), "
                f"{new.relapses.this_week} of them relapses."
            ),
        )
    )
    if new.shown:
        paragraphs.append(
            _tests_line(
                "Started:",
                [
                    (
                        e.test.name,
                        render.test_url(e.test.id),
                        e.test.status + (", relapse" if e.relapse else ""),
                    )
                    for e in new.shown
                ],
            )
        )
    paragraphs.append(
        (
            Text(
                f"Fixes verified: {fixes.verified.this_week} ({_change(fixes.verified)}); "
                f"relapsed: {fixes.relapsed.this_week} ({_change(fixes.relapsed)})."
            ),
        )
    )
    if digest.open.shown:
        paragraphs.append(
            _tests_line(
                f"Oldest open episodes ({digest.open.count} open):",
                [(e.test.name, render.test_url(e.test.id), f"{e.age.days} days") for e in digest.open.shown],
            )
        )
    if digest.ready.shown:
        paragraphs.append(
            _tests_line(
                f"Ready to release from quarantine ({digest.ready.count}):",
                [(r.test.name, render.test_url(r.test.id), "quarantined") for r in digest.ready.shown],
            )
        )
    attainment = []
    for what, figure in (("triage", targets.triage), ("fix", targets.fix)):
        now = figure.this_week
        if now.percent is None:
            attainment.append(f"{what}: nothing decided")
        else:
            change = f", {figure.change:+d} points" if figure.change is not None else ""
            attainment.append(f"{what} {now.percent}% met ({now.met} of {now.decided}{change})")
    paragraphs.append((Text("Targets: " + "; ".join(attainment) + "."),))
    return paragraphs


def digest_message(subscription: Subscription, *, now: datetime) -> Outgoing:
    paragraphs: list[tuple[Segment, ...]] = []
    for owner_key, label, repository in sections_of(subscription):
        digest = weekly_digest(owner_key=owner_key, now=now, repository=repository)
        paragraphs += digest_paragraphs(digest, label=label, repository=repository)
    return Outgoing(
        title=f"Weekly flaky-test digest: {subscription.name}, week to {now:%Y-%m-%d}",
        paragraphs=tuple(paragraphs),
    )
