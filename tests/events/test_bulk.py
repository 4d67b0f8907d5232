"""The bulk path (events/projection/rebuild.py): `seed_demo --bulk` and the fast `rebuild_projections`.

The bulk path decides the projection guards in memory; it must give exactly what the
receiver gives one delivery at a time (the Hypothesis rebuild-equality test in
test_order_independence.py covers generated edge cases; here, the demo's whole history).
"""

import io
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command
from django.db import DataError

from events import demo, sql
from events.models import (
    CalibrationBin,
    Delivery,
    Episode,
    FixTally,
    MonitorInterval,
    OutcomeTally,
    StatusDayDelta,
    StatusInterval,
    TargetTally,
    TestCase,
)
from events.projection import rebuild
from tests.events.state import projected_state, wipe

pytestmark = pytest.mark.django_db

SMALL = ["--tests=40", "--days=60", "--seed=7"]
NOW = datetime(2026, 5, 4, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_history(monkeypatch):
    # seed_demo's history ends at the current hour: fix it, so that two seedings in one
    # test send the same payloads even across an hour boundary.
    generate_history = demo.generate_history
    monkeypatch.setattr(
        demo, "generate_history", lambda *, now, **options: generate_history(now=NOW, **options)
    )


def seed(*options: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *SMALL, *options, stdout=out)
    return out.getvalue()


def delivery_log() -> list[tuple]:
    return sorted(
        Delivery.objects.values_list(
            "svix_id", "event_type", "body", "outcome", "error", "occurred_at", "redeliveries"
        )
    )


def test_bulk_seed_gives_what_the_receiver_gives():
    seed()
    through_receiver = projected_state(), delivery_log()
    wipe()
    output = seed("--bulk")
    assert "Demo data ready." in output
    assert (projected_state(), delivery_log()) == through_receiver
    assert Delivery.objects.filter(redeliveries__gt=0).exists()


def test_bulk_seed_stores_signed_deliveries_received_in_plan_order_after_their_event():
    seed("--bulk")
    deliveries = list(Delivery.objects.order_by("received_at", "id"))
    assert [d.id for d in deliveries] == sorted(d.id for d in deliveries)
    assert all(d.received_at > d.occurred_at for d in deliveries)
    assert all(d.headers["svix-signature"].startswith("v1,") for d in deliveries)
    redelivered = [d for d in deliveries if d.redeliveries]
    assert all(d.last_redelivered_at > d.received_at for d in redelivered)


def test_bulk_seed_refuses_a_database_with_deliveries():
    seed("--bulk")
    with pytest.raises(CommandError, match="empty database"):
        seed("--bulk")


def test_rebuild_recomputes_outcomes_and_keeps_the_rest_of_the_delivery_row():
    seed("--bulk")
    before = projected_state()
    stale = Delivery.objects.filter(event_type="test_case.status_changed").first()
    Delivery.objects.filter(pk=stale.pk).update(outcome=Delivery.Outcome.FAILED, error="old bug")
    call_command("rebuild_projections", verbosity=0)
    stale.refresh_from_db()
    assert (stale.outcome, stale.error) == (Delivery.Outcome.PROCESSED, "")
    assert stale.processed_at is not None
    assert projected_state() == before


def test_rebuild_falls_back_to_one_delivery_at_a_time_when_the_database_refuses_a_batch(monkeypatch, caplog):
    seed("--bulk")
    before = projected_state()
    TestCase.objects.update(triage_note="kept")

    def refuse(*args, **kwargs):
        raise DataError("value too long")

    monkeypatch.setattr(sql.Table, "flush", refuse)  # the bulk writes; replaying one at a time still inserts
    call_command("rebuild_projections", verbosity=0)
    assert "replaying one delivery at a time" in caplog.text
    assert projected_state() == {
        **before,
        "tests": {k: {**t, "triage": (*t["triage"][:2], "kept")} for k, t in before["tests"].items()},
    }


# Tallies kept by adding differences may keep a row at zero (the triage after the seed
# moved its episodes on); a rebuild writes none. Counted without them.
TALLY_COUNTS = {
    FixTally: "fixes",
    CalibrationBin: "verdicts",
    OutcomeTally: "investigations",
    TargetTally: "episodes",
}


def rows(model) -> int:
    field = TALLY_COUNTS.get(model)
    return (model.objects.exclude(**{field: 0}) if field else model.objects).count()


def test_rebuild_empties_every_projected_table_first():
    seed("--bulk")
    projected = {model: rows(model) for model in rebuild.PROJECTED_MODELS}
    call_command("rebuild_projections", verbosity=0)
    assert {model: rows(model) for model in rebuild.PROJECTED_MODELS} == projected


def test_rebuild_refills_missing_rollups_and_migrate_leaves_data_alone():
    """`migrate` runs no code over the data (no post_migrate hook: events/apps.py);
    rebuild_projections is the tool that refills rollups."""
    seed("--bulk")
    before = projected_state()
    for model in (Episode, MonitorInterval, StatusDayDelta, StatusInterval):
        model.objects.all().delete()
    missing = projected_state()
    assert missing != before
    call_command("migrate", verbosity=0)
    assert projected_state() == missing
    call_command("rebuild_projections", verbosity=0)
    assert projected_state() == before
