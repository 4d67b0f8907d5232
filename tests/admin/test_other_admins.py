"""Repositories, owners, monitors, history rows: browsable, read-only, searchable."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from events.models import (
    Investigation,
    InvestigationFact,
    Monitor,
    MonitorEvent,
    MonitorState,
    Owner,
    QuarantineChange,
    Repository,
    StatusChange,
)
from events.palette import STATUS_COLORS
from tests.admin.factories import BASE, FAILURE_RATE, investigate, make_history, make_test

pytestmark = pytest.mark.django_db
READ_ONLY = [
    Repository,
    Owner,
    Monitor,
    MonitorEvent,
    MonitorState,
    StatusChange,
    Investigation,
    InvestigationFact,
    QuarantineChange,
]


def url(model, suffix="") -> str:
    return f"/admin/events/{model._meta.model_name}/{suffix}"


def results(response) -> list:
    return list(response.context["cl"].result_list)


@pytest.fixture
def history():
    return make_history(4, 8)


@pytest.mark.parametrize("model", READ_ONLY, ids=lambda m: m.__name__)
def test_read_only_everywhere(admin_client, history, model):
    obj = model.objects.first()
    assert admin_client.get(url(model)).status_code == 200
    page = admin_client.get(url(model, f"{obj.pk}/change/"))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert admin_client.post(url(model, f"{obj.pk}/change/"), {}).status_code == 403
    assert admin_client.get(url(model, "add/")).status_code == 403
    assert admin_client.get(url(model, f"{obj.pk}/delete/")).status_code == 403
    admin_client.post(
        url(model), {"action": "delete_selected", ACTION_CHECKBOX_NAME: [obj.pk], "index": 0, "post": "yes"}
    )
    assert model.objects.filter(pk=obj.pk).exists()


def test_repositories(admin_client, history):
    response = admin_client.get(url(Repository))
    rows = {r.name: r for r in results(response)}
    assert set(rows) == {"acme/checkout", "acme/web"}
    assert rows["acme/checkout"].n_tests == 2
    html = response.content.decode()
    assert "https://github.com/acme/checkout" in html
    assert "/admin/events/testcase/?repository__id__exact=" in html
    assert [r.name for r in results(admin_client.get(url(Repository), {"q": "web"}))] == ["acme/web"]
    trunk_id = str(Repository.objects.get(name="acme/web").trunk_id)
    assert [r.name for r in results(admin_client.get(url(Repository), {"q": trunk_id}))] == ["acme/web"]


def test_owners(admin_client, history):
    response = admin_client.get(url(Owner))
    counts = {o.name: o.n_tests for o in results(response)}
    assert counts == {"@Acme/Web": 3, "@acme/payments": 1}  # first seen spelling; any case
    assert "/admin/events/testcase/?owner=%40acme%2Fweb" in response.content.decode()
    assert [o.name for o in results(admin_client.get(url(Owner), {"q": "PAY"}))] == ["@acme/payments"]


def test_monitors(admin_client, history):
    response = admin_client.get(url(Monitor))
    rows = {m.pk: m for m in results(response)}
    assert set(rows) == {FAILURE_RATE}  # monitors come from monitor events
    assert rows[FAILURE_RATE].n_events == 8  # two per test
    assert rows[FAILURE_RATE].n_active == 0  # the latest event of each pair resolved it
    assert [m.pk for m in results(admin_client.get(url(Monitor), {"type__exact": "failure_rate"}))] == [
        FAILURE_RATE
    ]
    assert [m.pk for m in results(admin_client.get(url(Monitor), {"q": str(FAILURE_RATE)}))] == [FAILURE_RATE]


def test_monitor_events_and_states(admin_client, history):
    response = admin_client.get(url(MonitorEvent), {"status__exact": "active"})
    assert len(results(response)) == 4
    assert len(results(admin_client.get(url(MonitorEvent), {"monitor_type": "failure_rate"}))) == 8
    assert len(results(admin_client.get(url(MonitorEvent), {"q": str(history[0].id)}))) == 2
    assert len(results(admin_client.get(url(MonitorEvent), {"q": history[0].name}))) == 2
    event = MonitorEvent.objects.first()
    page = admin_client.get(url(MonitorEvent, f"{event.pk}/change/")).content.decode()
    assert "&quot;failure_rate&quot;: 0.3" in page  # evidence, pretty-printed
    states = results(admin_client.get(url(MonitorState), {"status__exact": "resolved"}))
    assert len(states) == 4


def test_status_changes(admin_client, history):
    response = admin_client.get(url(StatusChange))
    rows = results(response)
    assert len(rows) == 8
    assert [r.occurred_at for r in rows] == sorted((r.occurred_at for r in rows), reverse=True)
    assert STATUS_COLORS["FLAKY"] in response.content.decode()
    assert len(results(admin_client.get(url(StatusChange), {"new_status__exact": "BROKEN"}))) == 4
    assert len(results(admin_client.get(url(StatusChange), {"previous_status__exact": "HEALTHY"}))) == 4
    assert len(results(admin_client.get(url(StatusChange), {"monitor_type": "pass_on_retry"}))) == 8
    assert len(results(admin_client.get(url(StatusChange), {"q": str(history[1].id)}))) == 2


def test_investigations_with_facts_inline(admin_client, history):
    response = admin_client.get(url(Investigation))
    rows = results(response)
    assert len(rows) == 8 and {r.n_facts for r in rows} == {1}
    assert results(admin_client.get(url(Investigation), {"band": "high"})) == []
    medium = results(admin_client.get(url(Investigation), {"band": "medium"}))
    assert [r.confidence for r in medium] == [0.65] * 4
    low = results(admin_client.get(url(Investigation), {"band": "low"}))
    assert [r.confidence for r in low] == [0.25] * 4
    assert len(results(admin_client.get(url(Investigation), {"fact_type": "GIT_BLAME"}))) == 8
    assert results(admin_client.get(url(Investigation), {"fact_type": "CI_LOGS"})) == []
    one = rows[0]
    assert [r.pk for r in results(admin_client.get(url(Investigation), {"q": str(one.pk)}))] == [one.pk]
    page = admin_client.get(url(Investigation, f"{one.pk}/change/"))
    assert [f.original.fact_type for f in page.context["inline_admin_formsets"][0]] == ["GIT_BLAME"]


def test_investigation_text_is_escaped(admin_client):
    test = make_test(1)
    investigate(test, BASE, summary="<script>alert('x')</script> [a](javascript:alert(1))")
    investigation = Investigation.objects.get()
    html = admin_client.get(url(Investigation, f"{investigation.pk}/change/")).content.decode()
    assert "<script>alert('x')</script>" not in html
    assert "&lt;script&gt;" in html
    assert 'href="javascript:' not in html


def test_quarantine_changes(admin_client, history):
    rows = results(admin_client.get(url(QuarantineChange)))
    assert len(rows) == 8
    assert len(results(admin_client.get(url(QuarantineChange), {"q": "dev@example"}))) == 8
    assert results(admin_client.get(url(QuarantineChange), {"q": "nobody@else"})) == []
    assert (
        len(results(admin_client.get(url(QuarantineChange), {"updated_setting": "ALWAYS_QUARANTINE"}))) == 8
    )
    html = admin_client.get(url(QuarantineChange)).content.decode()
    assert "UNSPECIFIED → ALWAYS_QUARANTINE" in html and "Dev Eloper" in html


def test_facts(admin_client, history):
    assert len(results(admin_client.get(url(InvestigationFact), {"fact_type": "GIT_BLAME"}))) == 8
