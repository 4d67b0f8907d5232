"""`seed_demo` (and the pure generator behind it) and `send_webhook`."""

import io
import json
import re
import threading
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from svix.webhooks import Webhook

from events import demo
from events.management.commands import seed_demo
from events.models import (
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
from events.trunk import parsing, registry
from tests.conftest import OTHER_SECRET, TEST_SECRET
from tests.events.factories import deliver

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
REFERENCE = FIXTURES / "v2.test_case.status_changed__reference_example.json"
NOW = datetime(2026, 5, 4, 12, tzinfo=UTC)
SMALL = {"tests": 40, "days": 60, "seed": 42, "repositories": 4}
# Received after every generated event: their times are all plausible.
NOW_FOR_PARSING = datetime.now(UTC)


def seed(**overrides) -> str:
    options = {**SMALL, **overrides}
    out = io.StringIO()
    call_command("seed_demo", *[f"--{k}={v}" for k, v in options.items()], stdout=out)
    return out.getvalue()


def small_plan(**overrides) -> list[tuple[str, dict]]:
    options = {**SMALL, **overrides}
    messages = demo.generate_history(now=NOW, **options)
    prefix = demo.message_id_prefix(**options, day=NOW.date())
    return demo.plan_deliveries(messages, seed=options["seed"], id_prefix=prefix)


def projection_counts() -> dict[str, int]:
    models = (
        Delivery, Repository, TestCase, Owner, TestCaseOwner, StatusChange, Monitor, MonitorEvent,
        MonitorState, Investigation, InvestigationFact, QuarantineChange,
    )  # fmt: skip
    return {model.__name__: model.objects.count() for model in models}


# ---------------------------------------------------------------- the pure generator


def test_same_seed_gives_the_same_payloads_and_another_seed_different_ones():
    first = demo.generate_history(now=NOW, **SMALL)
    assert first == demo.generate_history(now=NOW, **SMALL)
    assert json.dumps(first) == json.dumps(demo.generate_history(now=NOW, **SMALL))
    assert first != demo.generate_history(now=NOW, **{**SMALL, "seed": 43})


def test_event_times_lie_in_the_past_window_and_every_test_appears():
    messages = demo.generate_history(now=NOW, **SMALL)
    events = [registry.parse_event(m, received_at=NOW_FOR_PARSING) for m in messages]  # every payload parses
    assert all(NOW - timedelta(days=60) <= e.occurred_at < NOW for e in events)
    assert len({e.test_case.id for e in events}) == 40
    repositories = {e.test_case.repository.html_url for e in events if e.test_case.repository}
    assert repositories == {f"https://github.com/acme/{n}" for n in ("checkout", "web", "mobile", "platform")}


def test_delivery_order_is_mostly_by_event_time_with_a_few_late_and_a_few_redelivered():
    plan = demo.plan_deliveries(demo.generate_history(now=NOW), seed=42, id_prefix="msg_x")
    times = [registry.parse_event(payload, received_at=NOW_FOR_PARSING).occurred_at for _, payload in plan]
    late = sum(1 for a, b in zip(times, times[1:], strict=False) if a > b)
    assert 0.01 * len(plan) < late < 0.06 * len(plan)
    ids = Counter(msg_id for msg_id, _ in plan)
    repeated = [msg_id for msg_id, n in ids.items() if n > 1]
    assert 0.005 * len(ids) < len(repeated) < 0.02 * len(ids)
    # A redelivery is the same message: same id, same payload.
    by_id = defaultdict(list)
    for msg_id, payload in plan:
        by_id[msg_id].append(payload)
    assert all(p == payloads[0] for payloads in by_id.values() for p in payloads)
    assert 2000 < len(plan) < 10_000  # default size: several thousand deliveries


def test_generator_rejects_a_naive_now_and_too_short_a_history():
    with pytest.raises(ValueError, match="aware"):
        demo.generate_history(now=datetime(2026, 5, 4))  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="days"):
        demo.generate_history(now=NOW, days=3)


# ---------------------------------------------------------------- seed_demo through the receiver


@pytest.mark.django_db
def test_seed_demo_delivers_everything_through_the_receiver():
    output = seed()
    plan = small_plan()
    unique = {msg_id for msg_id, _ in plan}
    assert Delivery.objects.count() == len(unique)
    # All processed: no invalid, failed or ignored delivery; redeliveries only counted.
    assert set(Delivery.objects.values_list("outcome", flat=True)) == {Delivery.Outcome.PROCESSED}
    assert sum(Delivery.objects.values_list("redeliveries", flat=True)) == len(plan) - len(unique) > 0
    assert set(Delivery.objects.values_list("user_agent", flat=True)) == {"flakyboard-seed-demo"}
    assert all(
        h["svix-id"].startswith("msg_demo_42_") for h in Delivery.objects.values_list("headers", flat=True)
    )
    assert int(re.search(r"processed\s+(\d+)", output).group(1)) == len(unique)
    assert "duplicate" in output and "test_case.investigation_completed" in output
    assert_state_matches(plan)


@pytest.mark.django_db
def test_seed_demo_history_is_realistic():
    seed()
    assert set(TestCase.objects.values_list("status", flat=True)) == {"HEALTHY", "FLAKY", "BROKEN"}
    assert TestCase.objects.count() == 40
    assert Repository.objects.count() == 4 and not Repository.objects.filter(trunk_id__isnull=True).exists()

    owner_counts = Counter(TestCase.objects.values_list("id", flat=True).filter(owner_links__isnull=False))
    assert TestCase.objects.filter(owner_links__isnull=True).exists()  # no owner
    assert max(owner_counts.values()) >= 2  # several owners
    # "@Acme/Web" and "@acme/web" (or another team spelled two ways) are one owner.
    spellings = defaultdict(set)
    for codeowners in TestCase.objects.values_list("codeowners", flat=True):
        for name in codeowners:
            spellings[name.casefold()].add(name)
    assert any(len(names) > 1 for names in spellings.values())
    assert Owner.objects.count() == len(spellings)
    assert TestCase.objects.exclude(variant="").exists()

    confidences = list(Investigation.objects.values_list("confidence", flat=True))
    assert any(c >= 0.8 for c in confidences) and any(0.5 <= c < 0.8 for c in confidences)
    assert any(c < 0.5 for c in confidences)
    assert InvestigationFact.objects.values("fact_type").distinct().count() >= 4
    assert all(
        "**" in s and "](https://" in s
        for s in Investigation.objects.values_list("markdown_summary", flat=True)
    )

    settings_seen = set(QuarantineChange.objects.values_list("updated_setting", flat=True))
    assert {"ALWAYS_QUARANTINE", "UNSPECIFIED"} <= settings_seen
    assert TestCase.objects.filter(quarantined=True).exists()
    # The flag follows the latest quarantine change of each test.
    for test in TestCase.objects.filter(quarantine_changes__isnull=False).distinct():
        latest = test.quarantine_changes.order_by("-occurred_at").first()
        assert test.quarantined == (latest.updated_setting == "ALWAYS_QUARANTINE"), test.name

    assert MonitorEvent.objects.filter(status="active").exists()
    assert MonitorState.objects.filter(status="active").exists()  # some monitors still active now
    assert set(Monitor.objects.values_list("type", flat=True)) == {
        "pass_on_retry",
        "failure_rate",
        "failure_count",
    }
    assert StatusChange.objects.filter(previous_status="FLAKY", new_status="BROKEN").exists()
    assert StatusChange.objects.exclude(reason="").exists()  # legacy v1 changes

    flaky_rates = TestCase.objects.exclude(status="HEALTHY").values_list("failure_rate_last_7d", flat=True)
    healthy_rates = TestCase.objects.filter(status="HEALTHY").values_list("failure_rate_last_7d", flat=True)
    assert min(flaky_rates) > max(healthy_rates)
    assert count_relapses() >= 1


def count_relapses() -> int:
    """Episodes starting within 30 days after the same test's previous fix (METRICS.md)."""
    relapses = 0
    by_test = defaultdict(list)
    for change in StatusChange.objects.order_by("occurred_at"):
        by_test[change.test_case_id].append(change)
    for changes in by_test.values():
        for fixed, again in zip(changes, changes[1:], strict=False):
            if (
                fixed.new_status == "HEALTHY"
                and again.previous_status == "HEALTHY"
                and again.new_status in ("FLAKY", "BROKEN")
                and again.occurred_at - fixed.occurred_at <= timedelta(days=30)
            ):
                relapses += 1
    return relapses


def assert_state_matches(plan: list[tuple[str, dict]]) -> None:
    """Current state is what the payloads say once sorted by event time, whatever the
    delivery order (a few were delivered late on purpose)."""
    events = sorted(
        (registry.parse_event(p, received_at=NOW_FOR_PARSING) for _, p in plan), key=lambda e: e.occurred_at
    )
    expected_status: dict = {}
    expected_quarantined: dict = {}
    for event in events:
        if isinstance(event, parsing.StatusChanged):
            expected_status[event.test_case.id] = event.new_status
        if event.test_case.quarantined is not None:
            expected_quarantined[event.test_case.id] = event.test_case.quarantined
    actual = {t.id: t for t in TestCase.objects.all()}
    assert {k: actual[k].status for k in expected_status} == expected_status
    assert {k: actual[k].quarantined for k in expected_quarantined} == expected_quarantined
    assert all(t.status == "HEALTHY" for k, t in actual.items() if k not in expected_status)
    assert len(actual) == len({e.test_case.id for e in events})


@pytest.mark.django_db
def test_seed_demo_twice_with_the_same_seed_changes_no_projection(monkeypatch):
    end = seed_demo.history_end()
    monkeypatch.setattr(seed_demo, "history_end", lambda: end)  # the same day, even at midnight
    seed()
    before = projection_counts()
    statuses = dict(TestCase.objects.values_list("id", "status"))
    output = seed()
    assert projection_counts() == before
    assert dict(TestCase.objects.values_list("id", "status")) == statuses
    assert "processed" not in output.split("Deliveries by outcome:")[1].split("Tests now")[0]
    plan = small_plan()
    assert sum(Delivery.objects.values_list("redeliveries", flat=True)) == 2 * len(plan) - len(
        {i for i, _ in plan}
    )


@pytest.mark.django_db
def test_seed_demo_on_a_later_day_replaces_its_own_history_and_keeps_everything_else(monkeypatch):
    """`make demo` again days later: a history ending then, every delivery stored once,
    the 7-day view full, and nothing but the earlier demo run's deliveries removed."""
    today = seed_demo.history_end()
    earlier = today - timedelta(days=3)
    # A real delivery and triage, on a real test and on a demo test: both must survive.
    real = json.loads(REFERENCE.read_text())
    deliver(json.dumps(real), msg_id="msg_real_delivery")
    real_test = TestCase.objects.get()

    monkeypatch.setattr(seed_demo, "history_end", lambda: earlier)
    first = seed()
    assert "Replaced" not in first
    counts = projection_counts()
    demo_ids = set(Delivery.objects.exclude(svix_id="msg_real_delivery").values_list("svix_id", flat=True))
    assert all(i.startswith(f"msg_demo_42_40t60d4r_{earlier:%Y%m%d}_") for i in demo_ids)
    demo_test = TestCase.objects.exclude(pk=real_test.pk).order_by("pk").first()
    TestCase.objects.filter(pk__in=[real_test.pk, demo_test.pk]).update(
        triage_state=TestCase.Triage.INVESTIGATING, triage_note="kept"
    )

    monkeypatch.setattr(seed_demo, "history_end", lambda: today)
    second = seed()
    assert (
        f"Replaced this demo's earlier history ({earlier.date().isoformat()}): removed its {len(demo_ids)}"
        in second
    )
    ids = set(Delivery.objects.values_list("svix_id", flat=True))
    assert "msg_real_delivery" in ids and not ids & demo_ids  # the earlier run's deliveries only
    today_ids = ids - {"msg_real_delivery"}
    assert len(today_ids) == len(demo_ids)
    assert all(i.startswith(f"msg_demo_42_40t60d4r_{today:%Y%m%d}_") for i in today_ids)
    assert int(re.search(r"processed\s+(\d+)", second).group(1)) == len(today_ids)
    assert set(Delivery.objects.values_list("outcome", flat=True)) == {Delivery.Outcome.PROCESSED}
    # The same story three days later: as many rows as one run gives, not two overlapping ones.
    assert projection_counts() == counts
    assert TestCase.objects.get(pk=real_test.pk).status == real_test.status
    kept = TestCase.objects.filter(pk__in=[real_test.pk, demo_test.pk], triage_note="kept")
    assert kept.count() == 2
    # Current: the last events are from the day before the history's end, the 7-day view is full.
    week = {"occurred_at__gt": today - timedelta(days=7), "occurred_at__lte": today}
    assert StatusChange.objects.filter(**week).exists()
    assert MonitorEvent.objects.filter(**week).count() > 10
    assert Delivery.objects.filter(occurred_at__gt=today - timedelta(days=1)).exists()
    assert not Delivery.objects.filter(occurred_at__gt=today).exists()

    # Again the same day: redeliveries of the same messages, nothing added or removed.
    deliveries = sorted(Delivery.objects.values_list("svix_id", "body"))
    third = seed()
    assert "Replaced" not in third
    assert "processed" not in third.split("Deliveries by outcome:")[1].split("Tests now")[0]
    assert sorted(Delivery.objects.values_list("svix_id", "body")) == deliveries
    assert projection_counts() == counts


@pytest.mark.django_db
def test_seed_demo_other_seed_adds_other_deliveries():
    seed(tests=10)
    count = Delivery.objects.count()
    seed(tests=10, seed=7)
    assert Delivery.objects.count() > count


@pytest.mark.django_db
def test_seed_demo_without_a_secret_is_a_clear_error(settings):
    settings.TRUNK_WEBHOOK_SECRETS = []
    with pytest.raises(CommandError, match="TRUNK_WEBHOOK_SECRET"):
        seed()
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_seed_demo_fails_loudly_when_the_receiver_refuses(monkeypatch):
    # Signed with a secret the receiver does not know: it answers 401 and the command stops.
    monkeypatch.setattr(seed_demo, "Webhook", lambda secret: Webhook(OTHER_SECRET))
    with pytest.raises(CommandError, match=r"Delivery 1/\d+ \(msg_demo_42_.*\) was answered 401"):
        seed()
    assert not Delivery.objects.exists()


# ---------------------------------------------------------------- send_webhook over real HTTP


def send(*args: str) -> str:
    out = io.StringIO()
    call_command("send_webhook", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_send_webhook_signs_and_posts_a_file(live_server):
    url = f"{live_server.url}/webhooks/trunk/"
    output = send("--url", url, "--secret", TEST_SECRET, "--id", "msg_cli_1", str(REFERENCE))
    assert "msg_cli_1 -> 200" in output
    assert '"processed"' in output
    delivery = Delivery.objects.get()
    assert delivery.svix_id == "msg_cli_1"
    assert delivery.outcome == Delivery.Outcome.PROCESSED
    assert delivery.body == REFERENCE.read_text()  # the file's bytes, exactly
    assert delivery.user_agent.startswith("flakyboard-send-webhook")
    assert delivery.headers["content-type"] == "application/json"
    # The same id again is a redelivery: still 2xx, nothing applied twice.
    assert '"duplicate"' in send("--url", url, "--secret", TEST_SECRET, "--id", "msg_cli_1", str(REFERENCE))
    assert Delivery.objects.get().redeliveries == 1
    # Without --id a fresh id is generated.
    send("--url", url, "--secret", TEST_SECRET, str(REFERENCE))
    assert Delivery.objects.exclude(svix_id="msg_cli_1").get().svix_id.startswith("msg_")


@pytest.mark.django_db(transaction=True)
def test_send_webhook_with_the_wrong_secret_reports_401(live_server):
    with pytest.raises(CommandError, match="401"):
        send("--url", f"{live_server.url}/webhooks/trunk/", "--secret", OTHER_SECRET, str(REFERENCE))
    assert not Delivery.objects.exists()


class _Redirecting(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        self.send_response(307)
        self.send_header("Location", "/elsewhere/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_send_webhook_does_not_follow_redirects():
    # Svix counts a redirect as a failed attempt; so does the command.
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/trunk/"
        with pytest.raises(CommandError, match="answered 307"):
            send("--url", url, "--secret", TEST_SECRET, str(REFERENCE))
    finally:
        server.shutdown()
        server.server_close()


def test_send_webhook_to_an_unreachable_url_is_a_clear_error():
    with pytest.raises(CommandError, match=r"Could not connect to http://127\.0\.0\.1:9/"):
        send("--url", "http://127.0.0.1:9/", "--secret", TEST_SECRET, str(REFERENCE))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "ftp://example.com/", "--secret", TEST_SECRET, str(REFERENCE)], "http"),
        (["--url", "http://127.0.0.1:9/", "--secret", TEST_SECRET, "/no/such/file.json"], "Cannot read"),
        (
            ["--url", "http://127.0.0.1:9/", "--secret", "whsec_!!!", str(REFERENCE)],
            "not a valid Svix secret",
        ),
    ],
)
def test_send_webhook_bad_arguments_are_clear_errors(args, message):
    with pytest.raises(CommandError, match=message):
        send(*args)


def test_create_demo_user_prints_the_address_of_the_port_given(db):
    out = io.StringIO()
    call_command("create_demo_user", "--port", "8765", stdout=out)
    assert "http://127.0.0.1:8765/ (dashboard)" in out.getvalue()
    assert "8000" not in out.getvalue()


@pytest.mark.django_db
def test_seed_demo_replays_triage_and_verdicts_through_the_service_once(monkeypatch):
    """The demo's people triage its episodes and judge its investigations at their own
    times (the triage history the owners' targets and the calibration read); a re-run
    the same day adds nothing."""
    from events.models import InvestigationVerdict, TriageEvent

    end = seed_demo.history_end()
    monkeypatch.setattr(seed_demo, "history_end", lambda: end)
    output = seed()
    events = TriageEvent.objects.count()
    verdicts = dict(InvestigationVerdict.objects.values_list("pk", "verdict"))
    assert events > 0 and verdicts and "Triage replayed" in output
    assert set(verdicts.values()) == {"confirmed", "rejected"}
    # At their own times, in the history, never after its end; each by a demo person.
    assert TriageEvent.objects.filter(at__gte=end).count() == 0
    assert set(TriageEvent.objects.values_list("via", flat=True)) == {"demo"}
    assert TriageEvent.objects.filter(state_to="investigating").exists()
    assert TriageEvent.objects.filter(state_to="fixed").exists()
    seed()
    assert TriageEvent.objects.count() == events
    assert dict(InvestigationVerdict.objects.values_list("pk", "verdict")) == verdicts
