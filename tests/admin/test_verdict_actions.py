"""Verdicts in the Investigation admin: the column, the filter, the change page, and the
"Mark confirmed / Mark rejected / Clear verdict" actions (through events.triage, for
users who may triage)."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry

from events.models import Investigation, InvestigationVerdict, TriageEvent
from events.triage import set_verdict
from tests.admin.factories import BASE, investigate, make_test

pytestmark = pytest.mark.django_db
URL = "/admin/events/investigation/"


@pytest.fixture
def three() -> list[Investigation]:
    test = make_test(1)
    for k in range(3):
        investigate(test, BASE + timedelta(hours=k), confidence=0.3 * (k + 1))
    return list(Investigation.objects.order_by("occurred_at"))


def act(client, action, investigations, *, follow=True):
    data = {
        "action": action,
        ACTION_CHECKBOX_NAME: [str(i.pk) for i in investigations],
        "index": 0,
        "select_across": "0",
    }
    return client.post(URL, data, follow=follow)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def verdicts() -> dict:
    return dict(InvestigationVerdict.objects.values_list("investigation_id", "verdict"))


@pytest.mark.parametrize("bad", ["not-a-uuid", "\x00", "1"])
def test_an_action_on_an_invalid_id_is_refused_with_a_message(admin_client, three, bad):
    """Django filters by the posted ids as they are: "not-a-uuid" raised ValidationError (500)."""
    data = {"action": "mark_confirmed", ACTION_CHECKBOX_NAME: [str(three[0].pk), bad], "index": 0}
    response = admin_client.post(URL, data, follow=True)
    assert response.status_code == 200
    assert messages_of(response) == ["The selection holds an invalid id: nothing was done."]
    assert verdicts() == {} and not TriageEvent.objects.exists()


def test_mark_confirmed_goes_through_the_triage_service(admin_client, admin_user, three):
    set_verdict(three[0], by=admin_user, verdict="confirmed")
    response = act(admin_client, "mark_confirmed", three)
    assert response.status_code == 200
    assert messages_of(response) == [
        "2 investigations marked “Confirmed”. 1 selected investigation already was."
    ]
    assert verdicts() == {i.pk: "confirmed" for i in three}
    assert InvestigationVerdict.objects.get(pk=three[1].pk).by == admin_user
    # One history row and one log entry per investigation that changed (3: one before).
    event = TriageEvent.objects.filter(investigation=three[1]).get()
    assert (event.verdict_from, event.verdict_to, event.via) == ("", "confirmed", "action: mark confirmed")
    assert TriageEvent.objects.count() == 3
    entry = LogEntry.objects.filter(change_message__contains="action: mark confirmed").first()
    assert entry is not None and entry.change_message.endswith("none → Confirmed. (action: mark confirmed)")


def test_mark_rejected_and_clear(admin_client, three):
    act(admin_client, "mark_rejected", three[:2])
    assert verdicts() == {three[0].pk: "rejected", three[1].pk: "rejected"}
    response = act(admin_client, "clear_verdict", three)
    assert messages_of(response) == ["2 investigations cleared. 1 selected investigation already was."]
    assert verdicts() == {}
    assert list(TriageEvent.objects.filter(verdict_to="").values_list("verdict_from", flat=True)) == [
        "rejected",
        "rejected",
    ]


def test_column_filter_and_change_page(admin_client, admin_user, three):
    set_verdict(three[0], by=admin_user, verdict="confirmed")
    set_verdict(three[1], by=admin_user, verdict="rejected")
    body = admin_client.get(URL).content.decode()
    assert "column-verdict_column" in body and "Confirmed" in body and "Rejected" in body
    for value, expected in (("confirmed", [three[0]]), ("rejected", [three[1]]), ("none", [three[2]])):
        listed = admin_client.get(URL, {"verdict": value}).context["cl"].result_list
        assert [i.pk for i in listed] == [i.pk for i in expected], value
    page = admin_client.get(f"{URL}{three[0].pk}/change/").content.decode()
    assert "Confirmed by admin" in page
    assert "No verdict" in admin_client.get(f"{URL}{three[2].pk}/change/").content.decode()


def test_only_triagers_see_and_run_the_actions(login, triager, viewer, three):
    client = login(triager)
    actions = dict(client.get(URL).context["action_form"].fields["action"].choices)
    assert {"mark_confirmed", "mark_rejected", "clear_verdict"} <= set(actions)
    act(client, "mark_rejected", three[:1])
    assert verdicts() == {three[0].pk: "rejected"}

    client = login(viewer)
    response = client.get(URL)
    assert response.status_code == 200
    action_form = response.context["action_form"]
    assert action_form is None or "mark_confirmed" not in dict(action_form.fields["action"].choices)
    act(client, "mark_confirmed", three)
    assert verdicts() == {three[0].pk: "rejected"}  # refused: nothing changed
