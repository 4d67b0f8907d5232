"""The impact score ("Fix first", docs/metrics.md): its definition in events.metrics, and
the SQL expression that sorts by it, which must compute the same numbers."""

from datetime import timedelta

import pytest

from dashboard.selectors.tests import fix_first, with_impact
from events import metrics
from events.models import TestCase
from tests.events.impact_data import EXPECTED, FIX_FIRST_ORDER, build


def test_the_worked_example_of_the_docs():
    # 20 (BROKEN) + 7 PRs + 20 x 0.12 + 0.5 x 10 days + 5 x 1 relapse = 39.4
    example = {"status": "BROKEN", "prs_impacted": 7, "failure_rate": 0.12, "days_open": 10, "relapses": 1}
    assert metrics.impact_score(**example, quarantined=False) == pytest.approx(39.4)
    assert metrics.impact_score(**example, quarantined=True) == pytest.approx(9.85)


def test_healthy_is_zero_and_missing_figures_count_zero():
    assert (
        metrics.impact_score(
            status="HEALTHY", prs_impacted=50, failure_rate=1.0, days_open=9, relapses=3, quarantined=False
        )
        == 0
    )
    assert metrics.impact_score(
        status="FLAKY", prs_impacted=None, failure_rate=None, days_open=0, relapses=0, quarantined=False
    ) == pytest.approx(10)


def test_days_open_are_capped():
    capped = {"status": "FLAKY", "prs_impacted": 0, "failure_rate": 0, "relapses": 0, "quarantined": False}
    at_cap = metrics.impact_score(**capped, days_open=metrics.IMPACT_MAX_DAYS_OPEN)
    assert at_cap == pytest.approx(10 + 0.5 * 60)
    assert metrics.impact_score(**capped, days_open=400) == at_cap


def test_each_input_moves_the_score_the_documented_way():
    base = {"status": "FLAKY", "prs_impacted": 3, "failure_rate": 0.1, "days_open": 2, "relapses": 0}
    score = metrics.impact_score(**base, quarantined=False)
    assert metrics.impact_score(**(base | {"status": "BROKEN"}), quarantined=False) > score
    assert metrics.impact_score(**(base | {"relapses": 1}), quarantined=False) == pytest.approx(score + 5)
    assert metrics.impact_score(**(base | {"prs_impacted": 4}), quarantined=False) == pytest.approx(score + 1)
    assert metrics.impact_score(**base, quarantined=True) == pytest.approx(score / 4)


@pytest.mark.django_db
def test_sql_computes_the_definition_on_hand_built_tests():
    data = build()
    scores = dict(with_impact(TestCase.objects.all(), now=data.now).values_list("name", "impact"))
    assert {key: pytest.approx(scores[test.name]) for key, test in data.tests.items()} == EXPECTED


@pytest.mark.django_db
def test_sql_days_open_count_whole_days_from_the_episode_start():
    data = build()
    broken = TestCase.objects.filter(name=data.tests["broken_old"].name)
    # 10 days 2 hours open: 10 whole days, until 10 days 23:59:59 ...
    later = data.now + timedelta(hours=21, minutes=59, seconds=59)
    assert with_impact(broken, now=later).get().impact == pytest.approx(39.4)
    # ... 11 from then on; and the cap holds.
    assert with_impact(broken, now=later + timedelta(seconds=1)).get().impact == pytest.approx(39.9)
    far = data.now + timedelta(days=365)
    assert with_impact(broken, now=far).get().impact == pytest.approx(20 + 7 + 2.4 + 30 + 5)


@pytest.mark.django_db
def test_fix_first_ranks_by_impact_and_leaves_healthy_tests_out():
    data = build()
    ranked = fix_first(now=data.now)
    names = {test.name: key for key, test in data.tests.items()}
    assert [names[test.name] for test in ranked] == FIX_FIRST_ORDER
    assert [t.impact for t in ranked] == pytest.approx([EXPECTED[k] for k in FIX_FIRST_ORDER])


@pytest.mark.django_db
def test_ties_go_by_name_then_id():
    data = build()
    TestCase.objects.filter(name=data.tests["broken_old_quarantined"].name).update(
        quarantined=False, name="impact_broken_old"
    )
    ranked = fix_first(now=data.now)
    assert [t.impact for t in ranked[:2]] == pytest.approx([39.4, 39.4])
    assert [t.id for t in ranked[:2]] == sorted(t.id for t in ranked[:2])


def test_the_docs_state_the_formula_with_the_weights_of_the_code():
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    formula = (
        f"impact = Q × (S + P + {metrics.IMPACT_PER_FAILURE_RATE:g} × R + {metrics.IMPACT_PER_DAY_OPEN:g} × "
        f"min(D, {metrics.IMPACT_MAX_DAYS_OPEN}) + {metrics.IMPACT_PER_RELAPSE:g} × N)"
    )
    assert formula in docs
    assert formula.replace("×", "x") in metrics.IMPACT_FORMULA
    assert "## Fix first: the impact score" in docs and "**39.4**" in docs and "**9.85**" in docs
    assert metrics.IMPACT_STATUS_POINTS == {"BROKEN": 20.0, "FLAKY": 10.0}
    assert (metrics.IMPACT_PER_PR, metrics.IMPACT_QUARANTINED_FACTOR) == (1.0, 0.25)
