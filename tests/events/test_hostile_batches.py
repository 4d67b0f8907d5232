"""Hostile-but-valid deliveries through every projection path: inline (a batch of one),
the projector (batches, FLAKYBOARD_DEFERRED_PROJECTION) and the rebuild must end in the
same state, on SQLite (executemany, bulk_create) and on PostgreSQL (COPY, unnest arrays)."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from events.demo import payloads
from events.models import Delivery, TestCase
from events.projection import projector
from events.trunk import reader
from tests.events.factories import deliver, fake_test
from tests.events.state import projected_state, wipe

pytestmark = pytest.mark.django_db

# Text that COPY's text format, array literals (`{a,"b c",NULL}`) or JSON could mishandle.
TRICKY = [
    "",
    "NULL",
    "null",
    "\\N",
    "\\",
    "\\\\",
    'a"b',
    "'",
    "{}",
    "{",
    "}",
    "{a,b}",
    "a,b",
    "[]",
    '["x"]',
    '{"k": 1}',
    " ",
    "\t",
    "tab\there",
    "new\nline",
    "cr\rlf\r\n",
    "\x01\x1f\x7f",
    "\x00nul",
    "\ud800lone",
    "ünïcødé 🚀 \u202e",
    "ß",
    "x" * 300,
]


def nonempty(text: str) -> str:
    """For a field that must not be blank."""
    return text if text.strip() else f"blank {text!r}"


def repo(n: int, url: str) -> payloads.FakeRepository:
    return payloads.FakeRepository(uuid.UUID(int=0xAB0000 + n), url)


MONITOR = uuid.UUID(int=0xE1)
NOW = datetime.now(UTC).replace(microsecond=0)


def hostile_plan() -> list[tuple[str, dict]]:
    """(svix id, payload): tests first created, then changed (so that a batch updates
    existing rows too) with every tricky value in every text field, in and out of order,
    with redeliveries."""
    plan: list[tuple[str, dict]] = []
    base = NOW - timedelta(days=3)
    for n, text in enumerate(TRICKY):
        tests = []
        for variant in range(2):
            tests.append(
                payloads.FakeTest(
                    id=uuid.UUID(int=0xF000 + n),
                    name=nonempty(text),
                    classname=text,
                    file_path=f"{text}/{text}",
                    repository=repo(n % 3, ("https://github.com/acme/" + text) if variant else ""),
                    codeowners=[text, text.upper(), f"@{text}", "@Acme/Web", "@acme/web"][: 2 + n % 4]
                    if variant
                    else [f"{text},{{}}", '"', "\\", "NULL"],
                    variant=text[:255] if variant else "",
                    quarantined=bool(n % 2),
                    failure_rate_last_7d=n / 100,
                    pull_requests_impacted_last_7d=n if variant else 2**31 - 1,
                )
            )
        first, second = tests
        at = base + timedelta(minutes=n)
        plan.append(
            (
                f"msg_h{n}_a",
                payloads.status_changed(
                    first,
                    at=at,
                    previous="HEALTHY",
                    new="FLAKY",
                    monitor_id=MONITOR,
                    monitor_type=nonempty(text)[:100],
                ),
            )
        )
        later = payloads.status_changed(
            second, at=at + timedelta(hours=1), previous="FLAKY", new="BROKEN", monitor_id=MONITOR,
            monitor_type="failure_rate",
        )  # fmt: skip
        if n % 3 == 0:
            later["test_case"].pop("quarantined")
        elif n % 3 == 1:
            later["test_case"]["quarantined"] = None
        if n % 4 == 0:
            later.pop("repository")
        plan.append((f"msg_h{n}_b", later))
        plan.append(
            (
                f"msg_h{n}_c",
                payloads.monitor_status_changed(
                    second if n % 2 else first,
                    at=at + timedelta(minutes=30),
                    monitor_id=uuid.UUID(int=0xE100 + n % 3),
                    monitor_type=nonempty(text)[:100],
                    status="active" if n % 2 else "resolved",
                    evidence={text: [text, {text: None}], "n": 10**300, "f": -0.0, "l": [[], {}, [text]]},
                ),
            )
        )
        plan.append(
            (
                f"msg_h{n}_d",
                payloads.investigation_completed(
                    second,
                    at=at - timedelta(days=1),
                    investigation_id=uuid.UUID(int=0xD000 + n),
                    confidence=0.5,
                    markdown_summary=text,
                    failure_message=text * 3,
                    facts=[{"fact_type": nonempty(text)[:100], "content": text, "confidence": 0.25}],
                ),
            )
        )
        plan.append(
            (
                f"msg_h{n}_e",
                payloads.quarantining_setting_changed(
                    first,
                    at=at + timedelta(minutes=1),
                    previous=text[:64],
                    updated="ALWAYS_QUARANTINE",
                    actor_email=text,
                    actor_name=text,
                    reason=text,
                ),
            )
        )
    # One test with more owners than are applied (reader.OWNERS_MAX), each with a tricky
    # text, its list changed and its repository renamed from one delivery to the next.
    crowded = [f"@{text}/{i}" for i in range(130) for text in TRICKY[i % len(TRICKY) : i % len(TRICKY) + 1]]
    for k in range(3):
        test = payloads.FakeTest(
            id=uuid.UUID(int=0xFFFF),
            name="crowded",
            classname="",
            file_path="",
            repository=repo(9, f"https://github.com/acme/renamed-{k}"),
            codeowners=crowded[k:] if k != 1 else crowded[::-1],
        )
        plan.append(
            (
                f"msg_crowded_{k}",
                payloads.status_changed(
                    test, at=base + timedelta(hours=k), previous="HEALTHY", new="FLAKY", monitor_id=MONITOR,
                    monitor_type="x",
                ),
            )
        )  # fmt: skip
    # Out of order: the later snapshot before the earlier one for every other test;
    # then some redeliveries.
    ordered = []
    for i in range(0, len(plan), 5):
        group = plan[i : i + 5]
        ordered.extend(group if i % 10 else [group[1], group[0], *group[2:]])
    return ordered + ordered[::7]


def deliver_plan(plan):
    for msg_id, payload in plan:
        assert deliver(json.dumps(payload), msg_id=msg_id).result.value in ("stored", "redelivery")


def outcomes():
    return sorted(Delivery.objects.values_list("svix_id", "outcome", "error"))


def test_hostile_values_project_the_same_inline_batched_and_rebuilt(settings):
    plan = hostile_plan()
    deliver_plan(plan)
    inline = projected_state()
    inline_outcomes = outcomes()
    assert {o for _, o, _ in inline_outcomes} == {"processed"}, [
        o for o in inline_outcomes if o[1] != "processed"
    ]
    assert TestCase.objects.count() == len(TRICKY) + 1
    crowded = TestCase.objects.get(pk=uuid.UUID(int=0xFFFF))
    assert len(crowded.codeowners) == reader.OWNERS_MAX
    assert crowded.owners.count() == len({name.casefold() for name in crowded.codeowners})

    for batch_size in (1000, 7):
        wipe()
        settings.FLAKYBOARD_DEFERRED_PROJECTION = True
        deliver_plan(plan)
        while projector.project_pending(batch_size=batch_size):
            pass
        assert outcomes() == inline_outcomes
        assert projected_state() == inline, batch_size

    call_command("rebuild_projections", verbosity=0, stdout=io.StringIO())
    assert projected_state() == inline


def test_update_many_refuses_a_value_longer_than_its_column_like_an_insert():
    from django.db import DataError, connection, transaction

    from events import sql

    if connection.vendor != "postgresql":
        pytest.skip("SQLite does not enforce varchar lengths")
    test = fake_test(77)
    deliver(
        payloads.status_changed(
            test,
            at=datetime(2026, 5, 2, tzinfo=UTC),
            previous="HEALTHY",
            new="FLAKY",
            monitor_id=uuid.UUID(int=5),
            monitor_type="pass_on_retry",
        )
    )
    with pytest.raises(DataError), transaction.atomic():
        sql.update_many(TestCase, ("name",), [(test.id, "x" * 1001)])
    sql.update_many(TestCase, ("name",), [(test.id, "y" * 1000)])
    assert TestCase.objects.get(pk=test.id).name == "y" * 1000
