"""Apply typed events to the projected models: current state plus full history.

Order independence. Deliveries arrive late, twice and out of order (Svix is
at-least-once with best-effort ordering). Dedupe by svix id happens in `ingest`; here
every write of *current* state is guarded by the event time (`occurred_at`, Trunk's
clock, never our `received_at`), so a late, older event lands in history but never
overwrites newer state. Ties on event time are broken by the svix id, so the same set
of events gives the same state whatever the order (see tests/events/test_order_independence.py).

Each write is one statement where the database can decide (INSERT ... ON CONFLICT DO
NOTHING, then a guarded UPDATE): no read-before-write and no nested transactions. The
caller (`ingest`) runs `apply_event` inside one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlparse

from django.db.models import Q
from django.db.models.functions import Greatest, Least

from . import parsing, rollups
from .models import (
    Delivery,
    Investigation,
    InvestigationFact,
    Monitor,
    MonitorEvent,
    MonitorState,
    Owner,
    QuarantineChange,
    Repository,
    StatusChange,
    TestCase,
    TestCaseOwner,
)


def _newer(time_field: str, key_field: str, at: datetime, key: str) -> Q:
    """Rows whose current value is older than the event (at, key): the only ones to update."""
    return (
        Q(**{f"{time_field}__isnull": True})
        | Q(**{f"{time_field}__lt": at})
        | Q(**{time_field: at, f"{key_field}__lt": key})
    )


def _repository_name(html_url: str) -> str:
    path = urlparse(html_url).path.strip("/")
    return path.removesuffix(".git") if path else html_url


def upsert_repository(ref: parsing.RepositoryRef | None) -> Repository | None:
    """Find or create the repository: by Trunk id when sent (v2), else by URL (v1)."""
    if ref is None:
        return None
    if ref.trunk_id is not None:
        repo = Repository.objects.filter(trunk_id=ref.trunk_id).first()
        if repo is None and ref.html_url:
            # A repository first seen in a v1 payload (URL only) gets its id now.
            repo = Repository.objects.filter(html_url=ref.html_url, trunk_id__isnull=True).first()
            if repo is not None:
                repo.trunk_id = ref.trunk_id
                repo.save(update_fields=["trunk_id"])
        if repo is None:
            Repository.objects.bulk_create(
                [
                    Repository(
                        trunk_id=ref.trunk_id, html_url=ref.html_url, name=_repository_name(ref.html_url)
                    )
                ],
                ignore_conflicts=True,
            )
            repo = Repository.objects.get(trunk_id=ref.trunk_id)
        elif ref.html_url and repo.html_url != ref.html_url:
            # Renamed repository: the id is stable, the URL follows the latest sender.
            Repository.objects.filter(pk=repo.pk).update(
                html_url=ref.html_url, name=_repository_name(ref.html_url)
            )
        return repo
    repo = Repository.objects.filter(html_url=ref.html_url).order_by("id").first()
    if repo is None:
        repo = Repository.objects.create(html_url=ref.html_url, name=_repository_name(ref.html_url))
    return repo


def _owner_ids(codeowners: tuple[str, ...], at: datetime) -> list[int]:
    """Owner rows for these names; the spelling shown is the earliest by event time.

    Same event time: the smaller spelling wins, so the result is order-independent.
    Two statements in the common case; an UPDATE only when this event is earlier.
    """
    by_key: dict[str, str] = {}
    for name in codeowners:
        key = name.casefold()
        by_key[key] = min(by_key.get(key, name), name)
    if not by_key:
        return []
    Owner.objects.bulk_create(
        [Owner(key=key, name=name, first_seen_at=at) for key, name in by_key.items()],
        ignore_conflicts=True,
    )
    owners = list(Owner.objects.filter(key__in=by_key).values_list("id", "key", "name", "first_seen_at"))
    for pk, key, name, first_seen_at in owners:
        ours = by_key[key]
        if (at, ours) < (first_seen_at, name):
            # Guarded again in SQL: a concurrent delivery may have moved it meanwhile.
            Owner.objects.filter(pk=pk).filter(
                Q(first_seen_at__gt=at) | Q(first_seen_at=at, name__gt=ours)
            ).update(name=ours, first_seen_at=at)
    return [pk for pk, *_ in owners]


def upsert_test_case(ref: parsing.TestCaseRef, *, at: datetime, key: str) -> None:
    """Create the test if new; take its attributes when this event is the newest.

    The `test_case` object is a snapshot that Trunk sends whole with every event, so its
    attributes move together, guarded by `attributes_at`. Two fields may be missing from
    a payload (`quarantined` is optional; the v1 shape has no `classname`), so each has
    its own guard: its value comes from the newest event that carries it.
    """
    repository = upsert_repository(ref.repository)
    attributes = {
        "name": ref.name,
        "parent": ref.parent,
        "file_path": ref.file_path,
        "html_url": ref.html_url,
        "variant": ref.variant,
        "codeowners": list(ref.codeowners),
        "failure_rate_last_7d": ref.failure_rate_last_7d,
        "pull_requests_impacted_last_7d": ref.pull_requests_impacted_last_7d,
        "repository": repository,
    }
    # Fields a payload may leave out, each with its own (time, key) guard.
    separately_guarded = {
        name: value
        for name, value in (("quarantined", ref.quarantined), ("classname", ref.classname))
        if value is not None
    }
    guarded_values = {}
    for name, value in separately_guarded.items():
        guarded_values |= {name: value, f"{name}_at": at, f"{name}_event_key": key}
    TestCase.objects.bulk_create(
        [
            TestCase(
                id=ref.id,
                attributes_at=at,
                attributes_event_key=key,
                first_event_at=at,
                last_event_at=at,
                **attributes,
                **guarded_values,
            )
        ],
        ignore_conflicts=True,
    )
    test = TestCase.objects.filter(pk=ref.id)
    newest = _newer("attributes_at", "attributes_event_key", at, key)
    # The newest event also wins the separate guards: every event moves attributes_at, so
    # theirs never run ahead of it. One UPDATE in the common case (a newer event, same
    # owners); the owner links are rewritten only when the owners changed, or when this
    # very event created the row (its own (at, key) is already stored).
    newest_values = {
        "attributes_at": at,
        "attributes_event_key": key,
        "first_event_at": Least("first_event_at", at),
        "last_event_at": at,
        **attributes,
        **guarded_values,
    }
    if test.filter(newest, codeowners=attributes["codeowners"]).update(**newest_values):
        return
    if test.filter(newest | Q(attributes_at=at, attributes_event_key=key)).update(**newest_values):
        owner_ids = _owner_ids(ref.codeowners, at)
        TestCaseOwner.objects.filter(test_case_id=ref.id).exclude(owner_id__in=owner_ids).delete()
        TestCaseOwner.objects.bulk_create(
            [TestCaseOwner(test_case_id=ref.id, owner_id=o) for o in owner_ids], ignore_conflicts=True
        )
        return
    # A late, older event: history only, plus what older events may still decide.
    test.update(first_event_at=Least("first_event_at", at), last_event_at=Greatest("last_event_at", at))
    _owner_ids(ref.codeowners, at)  # the first-seen spelling of its owners
    for name, value in separately_guarded.items():
        test.filter(_newer(f"{name}_at", f"{name}_event_key", at, key)).update(
            **{name: value, f"{name}_at": at, f"{name}_event_key": key}
        )


# ---------------------------------------------------------------- one handler per type


def apply_status_changed(event: parsing.StatusChanged, delivery: Delivery) -> None:
    StatusChange.objects.create(
        delivery=delivery,
        test_case_id=event.test_case.id,
        occurred_at=event.occurred_at,
        previous_status=event.previous_status,
        new_status=event.new_status,
        monitor_id=event.monitor_id,
        monitor_type=event.monitor_type,
        monitor_status=event.monitor_status,
        reason=event.reason,
    )
    TestCase.objects.filter(pk=event.test_case.id).filter(
        _newer("status_since", "status_event_key", event.occurred_at, delivery.svix_id)
    ).update(status=event.new_status, status_since=event.occurred_at, status_event_key=delivery.svix_id)


def apply_monitor_status_changed(event: parsing.MonitorStatusChanged, delivery: Delivery) -> None:
    Monitor.objects.bulk_create(
        [Monitor(id=event.monitor_id, type=event.monitor_type)], ignore_conflicts=True
    )
    MonitorEvent.objects.create(
        delivery=delivery,
        monitor_id=event.monitor_id,
        test_case_id=event.test_case.id,
        occurred_at=event.occurred_at,
        status=event.monitor_status,
        evidence=event.evidence,
    )
    MonitorState.objects.bulk_create(
        [
            MonitorState(
                monitor_id=event.monitor_id,
                test_case_id=event.test_case.id,
                status=event.monitor_status,
                since=event.occurred_at,
                event_key=delivery.svix_id,
            )
        ],
        ignore_conflicts=True,
    )
    MonitorState.objects.filter(monitor_id=event.monitor_id, test_case_id=event.test_case.id).filter(
        _newer("since", "event_key", event.occurred_at, delivery.svix_id)
    ).update(status=event.monitor_status, since=event.occurred_at, event_key=delivery.svix_id)


def apply_investigation_completed(event: parsing.InvestigationCompleted, delivery: Delivery) -> None:
    """Store the investigation and its facts.

    Trunk's investigation id is unique. Should two deliveries (two svix ids) carry the
    same investigation, the one with the smaller svix id is kept, whatever the order.
    """
    fields = {
        "delivery": delivery,
        "test_case_id": event.test_case.id,
        "occurred_at": event.occurred_at,
        "confidence": event.confidence,
        "markdown_summary": event.markdown_summary,
        "failure_message": event.failure_message,
    }
    Investigation.objects.bulk_create(
        [Investigation(id=event.investigation_id, **fields)], ignore_conflicts=True
    )
    kept_delivery_id, kept_svix_id = (
        Investigation.objects.filter(pk=event.investigation_id)
        .values_list("delivery_id", "delivery__svix_id")
        .get()
    )
    if kept_delivery_id != delivery.pk:
        if kept_svix_id < delivery.svix_id:
            return
        InvestigationFact.objects.filter(investigation_id=event.investigation_id).delete()
        Investigation.objects.filter(pk=event.investigation_id).update(**fields)
    InvestigationFact.objects.bulk_create(
        [
            InvestigationFact(
                investigation_id=event.investigation_id,
                position=i,
                fact_type=fact.fact_type,
                content=fact.content,
                confidence=fact.confidence,
            )
            for i, fact in enumerate(event.facts)
        ]
    )


def apply_quarantine_setting_changed(event: parsing.QuarantineSettingChanged, delivery: Delivery) -> None:
    QuarantineChange.objects.create(
        delivery=delivery,
        test_case_id=event.test_case.id,
        occurred_at=event.occurred_at,
        actor_email=event.actor_email,
        actor_name=event.actor_name,
        previous_setting=event.previous_setting,
        updated_setting=event.updated_setting,
        reason=event.reason,
    )


HANDLERS: dict[type[parsing.Event], Callable[..., None]] = {
    parsing.StatusChanged: apply_status_changed,
    parsing.MonitorStatusChanged: apply_monitor_status_changed,
    parsing.InvestigationCompleted: apply_investigation_completed,
    parsing.QuarantineSettingChanged: apply_quarantine_setting_changed,
}


def apply_event(event: parsing.Event, delivery: Delivery) -> None:
    """Project one event. Every event carries its test case, whose attributes it updates.

    Then the rollups: a status change, or the test's earliest event (which moves the start
    of its first status interval), recomputes the test's status rollups; a monitor event
    its pair's intervals. These read the test's other events, so they rely on
    `upsert_test_case` writing the test row on every path: that row lock makes concurrent
    deliveries about one test run one after the other (tests/events/test_concurrency.py).
    """
    test_id = event.test_case.id
    upsert_test_case(event.test_case, at=event.occurred_at, key=delivery.svix_id)
    HANDLERS[type(event)](event, delivery)
    if isinstance(event, parsing.MonitorStatusChanged):
        rollups.refresh_monitor_pair(event.monitor_id, test_id)
    if (
        isinstance(event, parsing.StatusChanged)
        or TestCase.objects.filter(pk=test_id, first_event_at=event.occurred_at).exists()
    ):
        rollups.refresh_test(test_id)
