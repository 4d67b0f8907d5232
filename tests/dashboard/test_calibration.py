"""Is Trunk's AI right? Calibration against verdicts (reliability, Brier, ECE, the bound,
per fact type), the automatic outcome "fixed within 14 days", the investigations page's
section and the test page's in-place verdict form."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import LogEntry

from dashboard.selectors.calibration import calibration
from events.demo import payloads
from events.metrics import (
    AUTO_OUTCOME_WINDOW,
    CALIBRATION_MIN_VERDICTS,
    Period,
    brier_score,
    expected_calibration_error,
)
from events.models import Investigation, InvestigationVerdict, TriageEvent
from events.triage import set_verdict, set_verdicts
from tests.events.factories import MONITOR, deliver, fake_test

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC).replace(microsecond=0)
OTHER = payloads.FakeRepository(uuid.UUID(int=77), "https://github.com/acme/other")


def investigate(test, when, confidence, facts=(), n=None) -> Investigation:
    ident = uuid.UUID(int=n) if n else uuid.uuid4()
    deliver(
        payloads.investigation_completed(
            test,
            at=when,
            investigation_id=ident,
            confidence=confidence,
            markdown_summary="why",
            failure_message="boom",
            facts=[{"fact_type": t, "content": "...", "confidence": c} for t, c in facts],
        )
    )
    return Investigation.objects.get(pk=ident)


def change(test, when, previous, new):
    deliver(
        payloads.status_changed(
            test, at=when, previous=previous, new=new, monitor_id=MONITOR, monitor_type="pass_on_retry"
        )
    )


def period(name="30d") -> Period:
    return Period(name=name, now=NOW)


@pytest.fixture
def triager(django_user_model):
    return django_user_model.objects.create_user("triager", password="pw", is_staff=True)


# ---------------------------------------------------------------- calibration


def test_exact_brier_and_ece_for_a_hand_built_set(triager):
    test = fake_test(1)
    day = NOW - timedelta(days=2)
    a = investigate(test, day, 0.9, facts=[("CI_LOGS", 0.8), ("GIT_BLAME", None)])
    b = investigate(test, day, 0.9, facts=[("CI_LOGS", 0.6)])
    c = investigate(test, day, 0.2, facts=[("CI_LOGS", 0.2)])
    d = investigate(test, day, 0.6)
    investigate(test, day, 0.7)  # no verdict: left out
    old = investigate(test, NOW - timedelta(days=40), 0.1)  # outside the period
    set_verdicts([a.pk, d.pk], by=triager, verdict="confirmed")
    set_verdicts([b.pk, c.pk, old.pk], by=triager, verdict="rejected")

    result = calibration(period=period())

    pairs = [(0.9, 1), (0.9, 0), (0.2, 0), (0.6, 1)]
    # (0.01 + 0.81 + 0.04 + 0.16) / 4
    assert result["brier_score"] == pytest.approx(0.255)
    assert result["brier_score"] == pytest.approx(brier_score(pairs))
    # bins: 0.9 -> 2 verdicts, half confirmed (|0.5 - 0.9| x 2); 0.2 -> 0 of 1 (0.2); 0.6 -> 1 of 1 (0.4)
    assert result["ece"] == pytest.approx((0.8 + 0.2 + 0.4) / 4)
    assert result["ece"] == pytest.approx(
        expected_calibration_error([(2, 0.9, 0.5), (1, 0.2, 0.0), (1, 0.6, 1.0)])
    )
    assert result["verdicts"] == 4
    bins = {b["index"]: b for b in result["bins"]}
    assert len(result["bins"]) == 10 and bins[9]["high"] == 1.0
    assert (bins[9]["count"], bins[9]["confirmed"], bins[9]["share_confirmed"]) == (2, 1, 0.5)
    assert bins[9]["mean_confidence"] == pytest.approx(0.9)
    assert (bins[2]["count"], bins[2]["share_confirmed"]) == (1, 0.0)
    assert (bins[5]["count"], bins[5]["share_confirmed"], bins[5]["mean_confidence"]) == (0, None, None)

    # Per fact type with the facts' own confidence (a fact without one is left out).
    (ci_logs,) = result["fact_types"]
    assert ci_logs["fact_type"] == "CI_LOGS" and ci_logs["verdicts"] == 3
    # (0.8 - 1)^2 + (0.6 - 0)^2 + (0.2 - 0)^2 = 0.04 + 0.36 + 0.04
    assert ci_logs["brier_score"] == pytest.approx(0.44 / 3)
    assert ci_logs["ece"] == pytest.approx((0.2 + 0.6 + 0.2) / 3)
    assert not ci_logs["enough"] and ci_logs["needed"] == CALIBRATION_MIN_VERDICTS - 3


def test_repository_scope(triager):
    here, there = fake_test(1), fake_test(2, repository=OTHER)
    a = investigate(here, NOW - timedelta(days=1), 0.9)
    b = investigate(there, NOW - timedelta(days=1), 0.9)
    set_verdicts([a.pk, b.pk], by=triager, verdict="confirmed")
    repository = Investigation.objects.get(pk=a.pk).test_case.repository_id
    assert calibration(period=period(), repository=repository)["verdicts"] == 1
    assert calibration(period=period())["verdicts"] == 2


def test_the_bound(triager):
    test = fake_test(1)
    made = [investigate(test, NOW - timedelta(hours=i + 1), 0.75) for i in range(CALIBRATION_MIN_VERDICTS)]
    set_verdicts([i.pk for i in made[:-1]], by=triager, verdict="confirmed")
    below = calibration(period=period())
    assert (below["verdicts"], below["enough"], below["needed"]) == (CALIBRATION_MIN_VERDICTS - 1, False, 1)
    set_verdict(made[-1], by=triager, verdict="rejected")
    at_bound = calibration(period=period())
    assert (at_bound["verdicts"], at_bound["enough"], at_bound["needed"]) == (
        CALIBRATION_MIN_VERDICTS,
        True,
        0,
    )


# ---------------------------------------------------------------- the automatic outcome


def outcome(band="high", name="90d") -> dict:
    return next(row for row in calibration(period=period(name))["auto_outcome"] if row["band"] == band)


def test_auto_outcome_boundaries():
    start = NOW - timedelta(days=60)
    # Fixed exactly 14 days after the investigation (made at the episode's start): fixed.
    on_time = fake_test(1)
    change(on_time, start, "HEALTHY", "FLAKY")
    investigate(on_time, start, 0.9)
    change(on_time, start + AUTO_OUTCOME_WINDOW, "FLAKY", "HEALTHY")
    # Fixed one second later: not fixed.
    late = fake_test(2)
    change(late, start, "HEALTHY", "FLAKY")
    investigate(late, start, 0.9)
    change(late, start + AUTO_OUTCOME_WINDOW + timedelta(seconds=1), "FLAKY", "HEALTHY")
    # Made exactly when the episode ended, and before any episode: no open episode.
    ended = fake_test(3)
    change(ended, start - timedelta(days=1), "HEALTHY", "FLAKY")
    change(ended, start, "FLAKY", "HEALTHY")
    investigate(ended, start, 0.9)
    investigate(fake_test(4), start, 0.9)
    # Still open: not fixed once its 14 days have passed, too recent before.
    still_open = fake_test(5)
    change(still_open, start, "HEALTHY", "FLAKY")
    investigate(still_open, start + timedelta(days=1), 0.95)
    investigate(still_open, NOW - AUTO_OUTCOME_WINDOW + timedelta(seconds=1), 0.85)
    investigate(still_open, NOW - AUTO_OUTCOME_WINDOW, 0.8)  # exactly 14 days ago: passed
    # Recent but already fixed: fixed. Low confidence: counted in its own band.
    recent = fake_test(6)
    change(recent, NOW - timedelta(days=3), "HEALTHY", "BROKEN")
    investigate(recent, NOW - timedelta(days=3), 0.3)
    change(recent, NOW - timedelta(days=1), "BROKEN", "HEALTHY")

    high = outcome("high")
    assert {k: high[k] for k in ("fixed", "not_fixed", "too_recent", "no_open_episode")} == {
        "fixed": 1,
        "not_fixed": 3,
        "too_recent": 1,
        "no_open_episode": 2,
    }
    assert high["decided"] == 4 and high["share_fixed"] == pytest.approx(0.25)
    low = outcome("low")
    assert (low["fixed"], low["not_fixed"], low["too_recent"], low["share_fixed"]) == (1, 0, 0, 1.0)
    medium = outcome("medium")
    assert medium["decided"] == 0 and medium["share_fixed"] is None
    # The period applies: within 7 days only the recent ones.
    assert outcome("high", "7d")["too_recent"] == 0 and outcome("low", "7d")["fixed"] == 1


# ---------------------------------------------------------------- the investigations page

PAGE = "/investigations/"


def test_page_below_the_bound_says_how_many_more(reader_client, triager):
    test = fake_test(1)
    a = investigate(test, NOW - timedelta(days=1), 0.9, facts=[("CI_LOGS", 0.7)])
    set_verdict(a, by=triager, verdict="confirmed")
    response = reader_client.get(PAGE)
    body = response.content.decode()
    assert "Is Trunk's AI right?" in body
    assert (
        f"1 verdict in this period: the reliability diagram needs at least {CALIBRATION_MIN_VERDICTS}, "
        f"{CALIBRATION_MIN_VERDICTS - 1} more." in body
    )
    assert 'id="reliability-chart"' not in body and response.context["calibration_chart"] is None
    assert f"needs {CALIBRATION_MIN_VERDICTS - 1} more" in body  # the CI_LOGS row
    assert "Fixed within 14 days" in body


def test_page_draws_the_diagram_with_enough_verdicts(reader_client, triager):
    test = fake_test(1)
    made = [investigate(test, NOW - timedelta(hours=i + 1), 0.85) for i in range(CALIBRATION_MIN_VERDICTS)]
    set_verdicts([i.pk for i in made[:15]], by=triager, verdict="confirmed")
    set_verdicts([i.pk for i in made[15:]], by=triager, verdict="rejected")
    response = reader_client.get(PAGE)
    body = response.content.decode()
    assert 'id="reliability-chart"' in body and "calibration-needs" not in body
    figure = response.context["calibration_chart"]
    observed = next(trace for trace in figure["data"] if trace["name"] == "Share confirmed")
    assert observed["x"] == [0.85] and observed["y"] == [0.75] and observed["text"] == ["n=20"]
    diagonal = next(trace for trace in figure["data"] if trace["name"] == "Perfect calibration")
    assert diagonal["x"] == [0, 1] and diagonal["y"] == [0, 1]
    # (0.15^2 x 15 + 0.85^2 x 5) / 20 and |0.75 - 0.85|
    calibrated = response.context["calibration"]
    assert calibrated["brier_score"] == pytest.approx((0.15**2 * 15 + 0.85**2 * 5) / 20)
    assert calibrated["ece"] == pytest.approx(0.1) and "0.100" in body


@pytest.mark.parametrize("size", [10, 40])
def test_page_query_count_is_constant(reader_client, load_demo, django_assert_num_queries, triager, size):
    load_demo(tests=size, days=30)
    ids = list(Investigation.objects.order_by("pk").values_list("pk", flat=True))
    set_verdicts(ids[::2], by=triager, verdict="confirmed")
    set_verdicts(ids[1::2], by=triager, verdict="rejected")
    # session and user (2), repositories (1), owner and fact type choices (2), list count,
    # page and owners (3), histogram, per day, facts (3); over all history: the probe for
    # a judged investigation after now and the calibration tally (2), the outcome tally
    # and the last 14 days' outcomes (2)
    with django_assert_num_queries(15):
        assert reader_client.get(PAGE, {"period": "all"}).status_code == 200


# ---------------------------------------------------------------- the verdict form on the test page


def verdict_url(investigation: Investigation) -> str:
    return f"/tests/{investigation.test_case_id}/investigations/{investigation.pk}/verdict/"


def test_the_form_is_shown_only_to_triagers(client, user, triager):
    investigation = investigate(fake_test(1), NOW - timedelta(days=1), 0.9)
    page = f"/tests/{investigation.test_case_id}/"
    client.force_login(user)
    body = client.get(page).content.decode()
    assert f'id="verdict-{investigation.pk}"' in body and "No verdict on this root cause yet." in body
    assert verdict_url(investigation) not in body
    client.force_login(triager)
    body = client.get(page).content.decode()
    assert f'action="{verdict_url(investigation)}"' in body and "csrfmiddlewaretoken" in body


def test_a_non_triager_is_refused(reader_client):
    investigation = investigate(fake_test(1), NOW - timedelta(days=1), 0.9)
    response = reader_client.post(verdict_url(investigation), {"verdict": "confirmed"})
    assert response.status_code == 403
    assert not InvestigationVerdict.objects.exists() and not TriageEvent.objects.exists()


def test_a_post_sets_the_verdict_and_writes_the_history(client, triager):
    investigation = investigate(fake_test(1), NOW - timedelta(days=1), 0.9)
    client.force_login(triager)
    response = client.post(verdict_url(investigation), {"verdict": "rejected"})
    assert response.status_code == 302
    assert response["Location"] == f"/tests/{investigation.test_case_id}/#verdict-{investigation.pk}"
    verdict = InvestigationVerdict.objects.get(pk=investigation.pk)
    assert (verdict.verdict, verdict.by) == ("rejected", triager)
    event = TriageEvent.objects.get()
    assert (event.investigation_id, event.verdict_from, event.verdict_to, event.via) == (
        investigation.pk,
        "",
        "rejected",
        "dashboard",
    )
    assert LogEntry.objects.get().change_message.endswith("none → Rejected. (dashboard)")
    # htmx: the fragment alone, with the author and time
    response = client.post(
        verdict_url(investigation), {"verdict": "confirmed"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith(
        f'<div class="verdict" id="verdict-{investigation.pk}">'
    )
    assert "Confirmed" in body and "by triager" in body and "Saved." in body
    assert TriageEvent.objects.count() == 2
    # clearing it
    client.post(verdict_url(investigation), {"verdict": ""}, headers={"HX-Request": "true"})
    assert not InvestigationVerdict.objects.exists() and TriageEvent.objects.count() == 3


def test_the_form_refuses_an_unknown_verdict_and_another_tests_investigation(client, triager):
    investigation = investigate(fake_test(1), NOW - timedelta(days=1), 0.9)
    other = fake_test(2)
    investigate(other, NOW, 0.5)
    client.force_login(triager)
    assert client.post(verdict_url(investigation), {"verdict": "maybe"}).status_code == 400
    wrong = f"/tests/{other.id}/investigations/{investigation.pk}/verdict/"
    assert client.post(wrong, {"verdict": "confirmed"}).status_code == 404
    assert not InvestigationVerdict.objects.exists()


def test_a_post_without_a_verdict_does_not_clear_it(client, triager):
    investigation = investigate(fake_test(1), NOW - timedelta(days=1), 0.9)
    client.force_login(triager)
    assert client.post(verdict_url(investigation), {"verdict": "confirmed"}).status_code == 302
    for headers in ({}, {"HX-Request": "true"}):
        assert client.post(verdict_url(investigation), {}, headers=headers).status_code == 400
        assert client.post(verdict_url(investigation), {"other": ""}, headers=headers).status_code == 400
    assert InvestigationVerdict.objects.get().verdict == "confirmed"
    assert TriageEvent.objects.count() == 1


def test_the_form_is_csrf_protected(triager):
    from django.test import Client

    investigation = investigate(fake_test(1), NOW - timedelta(days=1), 0.9)
    client = Client(enforce_csrf_checks=True)
    client.force_login(triager)
    assert client.post(verdict_url(investigation), {"verdict": "confirmed"}).status_code == 403
    assert not InvestigationVerdict.objects.exists()


def test_hostile_fact_types_are_escaped(reader_client, triager):
    hostile = "<script>alert(1)</script>"
    a = investigate(fake_test(1), NOW - timedelta(days=1), 0.9, facts=[(hostile, 0.7)])
    set_verdict(a, by=triager, verdict="confirmed")
    body = reader_client.get(PAGE).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and hostile not in body
