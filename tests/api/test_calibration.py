"""Is Trunk's AI right? through the API: GET stats/calibration/ and the verdict write
PUT/PATCH investigations/{id}/verdict/ (through events.triage, for who may triage)."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from events.metrics import AUTO_OUTCOME_WINDOW, CALIBRATION_MIN_VERDICTS
from events.models import Investigation, InvestigationVerdict, Repository, TriageEvent
from events.triage import set_verdict, set_verdicts
from tests.api.conftest import OTHER_REPO, change, investigation
from tests.events.factories import fake_test

pytestmark = pytest.mark.django_db
STATS = "/api/v1/stats/calibration/"


def inv(n: int) -> Investigation:
    return Investigation.objects.get(pk=uuid.UUID(int=500 + n))


def verdict_url(n: int) -> str:
    return f"/api/v1/investigations/{uuid.UUID(int=500 + n)}/verdict/"


@pytest.fixture
def judged(triager):
    """Three investigations of the last days with a verdict, one without, one in another
    repository, one too old for 30 days; t1's episode, open at its investigations, ended
    two days after them."""
    now = timezone.now()
    t1, t2 = fake_test(1), fake_test(2, repository=OTHER_REPO)
    change(t1, now - timedelta(days=20), "HEALTHY", "FLAKY")
    investigation(t1, now - timedelta(days=18), 0.9, 0, facts=("CI_LOGS",))  # fact 0.5
    investigation(t1, now - timedelta(days=17), 0.9, 1, facts=("CI_LOGS",))
    investigation(t1, now - timedelta(days=16), 0.3, 2, facts=("CI_LOGS", "GIT_BLAME"))  # 0.5, 0.6
    investigation(t1, now - timedelta(days=15), 0.5, 3)  # no verdict
    change(t1, now - timedelta(days=14), "FLAKY", "HEALTHY")
    investigation(t2, now - timedelta(days=1), 0.7, 4)
    investigation(t1, now - timedelta(days=60), 0.1, 5)
    set_verdicts([inv(0).pk, inv(4).pk, inv(5).pk], by=triager, verdict="confirmed")
    set_verdicts([inv(1).pk, inv(2).pk], by=triager, verdict="rejected")
    return {"t1": t1, "t2": t2}


def test_calibration_numbers(api, judged):
    body = api.get(STATS, {"period": "30d"}).json()
    assert body["period"] == "30d" and body["repository"] is None
    assert body["verdicts"] == 4
    assert (body["enough"], body["needed"], body["min_verdicts"]) == (
        False,
        CALIBRATION_MIN_VERDICTS - 4,
        CALIBRATION_MIN_VERDICTS,
    )
    # (0.9-1)^2 + (0.9-0)^2 + (0.3-0)^2 + (0.7-1)^2 = 0.01 + 0.81 + 0.09 + 0.09
    assert body["brier_score"] == pytest.approx(1.0 / 4)
    # bin 9: 2, half confirmed (0.4 x 2); bin 3: 0 of 1 (0.3); bin 7: 1 of 1 (0.3)
    assert body["ece"] == pytest.approx((0.8 + 0.3 + 0.3) / 4)
    assert len(body["bins"]) == 10
    assert body["bins"][9] == {
        "index": 9,
        "low": 0.9,
        "high": 1.0,
        "count": 2,
        "mean_confidence": pytest.approx(0.9),
        "confirmed": 1,
        "share_confirmed": 0.5,
    }
    assert body["bins"][0]["count"] == 0 and body["bins"][0]["share_confirmed"] is None
    ci_logs, git_blame = body["fact_types"]
    assert (ci_logs["fact_type"], ci_logs["verdicts"]) == ("CI_LOGS", 4)
    # facts at 0.5: two confirmed (investigations 0 and 4), two rejected (1 and 2)
    assert ci_logs["brier_score"] == pytest.approx(0.25)
    assert ci_logs["ece"] == pytest.approx(0.0)
    assert (git_blame["fact_type"], git_blame["verdicts"], git_blame["needed"]) == (
        "GIT_BLAME",
        1,
        CALIBRATION_MIN_VERDICTS - 1,
    )
    bands = {row["band"]: row for row in body["auto_outcome"]}
    assert list(bands) == ["high", "medium", "low"]
    # t1's episode ended 4, 3, 2 and 1 days after its investigations: fixed; t2 none open.
    assert (bands["high"]["fixed"], bands["high"]["share_fixed"]) == (2, 1.0)
    assert (bands["medium"]["fixed"], bands["medium"]["no_open_episode"]) == (1, 1)
    assert bands["low"]["fixed"] == 1 and AUTO_OUTCOME_WINDOW.days == 14


def test_calibration_period_and_repository(api, judged):
    assert api.get(STATS, {"period": "all"}).json()["verdicts"] == 5
    repository = Repository.objects.get(trunk_id=OTHER_REPO.id)
    body = api.get(STATS, {"period": "all", "repository": repository.pk}).json()
    assert body["verdicts"] == 1 and body["repository"] == repository.pk
    assert api.get(STATS, {"period": "1y"}).status_code == 400


def test_calibration_requires_login(anon):
    assert anon.get(STATS).status_code == 401


def test_the_bound_through_the_api(api, triager):
    test = fake_test(1)
    for n in range(CALIBRATION_MIN_VERDICTS):
        investigation(test, timezone.now() - timedelta(hours=n + 1), 0.8, n)
    set_verdicts(Investigation.objects.all(), by=triager, verdict="confirmed")
    body = api.get(STATS).json()
    assert (body["verdicts"], body["enough"], body["needed"]) == (CALIBRATION_MIN_VERDICTS, True, 0)


# ---------------------------------------------------------------- the verdict write


def test_patch_sets_the_verdict_through_the_triage_service(triage_api, triager, judged):
    response = triage_api.patch(verdict_url(3), {"verdict": "confirmed"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["verdict"], body["verdict_by"]) == (str(inv(3).pk), "confirmed", "triager")
    assert body["verdict_at"] is not None and [f["fact_type"] for f in body["facts"]] == ["CI_LOGS"]
    event = TriageEvent.objects.get(investigation=inv(3))
    assert (event.verdict_from, event.verdict_to, event.via, event.by) == ("", "confirmed", "API", triager)
    assert LogEntry.objects.filter(change_message__endswith="none → Confirmed. (API)").count() == 1
    # PUT changes it; an empty verdict clears it
    assert (
        triage_api.put(verdict_url(3), {"verdict": "rejected"}, format="json").json()["verdict"] == "rejected"
    )
    cleared = triage_api.put(verdict_url(3), {"verdict": ""}, format="json").json()
    assert (cleared["verdict"], cleared["verdict_by"], cleared["verdict_at"]) == ("", None, None)
    assert not InvestigationVerdict.objects.filter(pk=inv(3).pk).exists()
    assert TriageEvent.objects.filter(investigation=inv(3)).count() == 3


def test_the_verdict_is_read_on_the_investigations(api, judged):
    body = api.get(f"/api/v1/investigations/{inv(0).pk}/").json()
    assert (body["verdict"], body["verdict_by"]) == ("confirmed", "triager")
    rows = {row["id"]: row for row in api.get("/api/v1/investigations/").json()["results"]}
    assert rows[str(inv(3).pk)]["verdict"] == "" and rows[str(inv(1).pk)]["verdict"] == "rejected"


def test_who_may_write(api, anon, staff_api, judged):
    assert api.patch(verdict_url(3), {"verdict": "confirmed"}, format="json").status_code == 403
    assert anon.patch(verdict_url(3), {"verdict": "confirmed"}, format="json").status_code == 401
    assert not InvestigationVerdict.objects.filter(pk=inv(3).pk).exists()
    assert staff_api.patch(verdict_url(3), {"verdict": "confirmed"}, format="json").status_code == 200


def test_bad_bodies(triage_api, triager, judged):
    set_verdict(inv(3), by=triager, verdict="rejected")
    maybe = triage_api.patch(verdict_url(3), {"verdict": "maybe"}, format="json")
    assert maybe.status_code == 400 and "verdict" in maybe.json()
    extra = triage_api.patch(verdict_url(3), {"verdict": "confirmed", "confidence": 1}, format="json")
    assert extra.status_code == 400 and "confidence" in extra.json()
    assert triage_api.patch(verdict_url(3), {}, format="json").status_code == 400
    missing = f"/api/v1/investigations/{uuid.uuid4()}/verdict/"
    assert triage_api.patch(missing, {"verdict": "confirmed"}, format="json").status_code == 404
    assert InvestigationVerdict.objects.get(pk=inv(3).pk).verdict == "rejected"
