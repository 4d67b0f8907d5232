"""The triage history and the owners' targets in the admin: a read-only list of triage
actions (filters, search), the history on each test's change page, and the owners'
targets form (owner picked or typed, stored by its key, clear errors)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import Owner, OwnerTarget, TestCase, TriageEvent
from events.triage import VIA_API, VIA_DASHBOARD, triage_test
from tests.admin.factories import make_history

pytestmark = pytest.mark.django_db
EVENTS = "/admin/events/triageevent/"
TARGETS = "/admin/events/ownertarget/"


@pytest.fixture
def triaged(make_user):
    """Two tests; alice triaged the first from the dashboard, bob the second by API."""
    first, second = (TestCase.objects.get(pk=fake.id) for fake in make_history(2, 4))
    alice, bob = make_user("alice"), make_user("bob")
    triage_test(first, by=alice, state="investigating", via=VIA_DASHBOARD)
    triage_test(second, by=bob, assignee=bob, via=VIA_API, at=timezone.now() - timedelta(days=10))
    return {"first": first, "second": second, "alice": alice, "bob": bob}


def shown(response) -> list[str]:
    return [event.test_case.name for event in response.context["cl"].result_list]


def test_triagers_browse_the_history_read_only(login, triager, triaged):
    client = login(triager)
    response = client.get(EVENTS)
    assert response.status_code == 200
    assert shown(response) == [triaged["first"].name, triaged["second"].name]  # newest first
    body = response.content.decode()
    assert "Triage state: New → Investigating. (dashboard)" in body
    event = TriageEvent.objects.first()
    assert client.get(f"{EVENTS}{event.pk}/change/").status_code == 200  # view only
    assert client.post(f"{EVENTS}{event.pk}/change/", {"message": "x"}).status_code == 403
    assert client.get(f"{EVENTS}add/").status_code == 403
    assert client.get(f"{EVENTS}{event.pk}/delete/").status_code == 403


def test_filters_by_via_by_and_date_and_search_by_test_name(admin_client, triaged):
    assert shown(admin_client.get(EVENTS, {"via": VIA_API})) == [triaged["second"].name]
    assert shown(admin_client.get(EVENTS, {"by__id__exact": triaged["alice"].pk})) == [triaged["first"].name]
    # The date filter's "Today" link (its bounds carry the zone).
    today = timezone.now().date()
    bounds = {"at__gte": f"{today} 00:00:00+00:00", "at__lt": f"{today + timedelta(days=1)} 00:00:00+00:00"}
    recent = admin_client.get(EVENTS, bounds)
    assert shown(recent) == [triaged["first"].name]
    assert shown(admin_client.get(EVENTS, {"q": triaged["second"].name})) == [triaged["second"].name]
    assert shown(admin_client.get(EVENTS, {"q": str(triaged["first"].pk)})) == [triaged["first"].name]


def test_the_test_change_page_shows_its_triage_history(admin_client, triaged):
    test = triaged["first"]
    for n in range(22):
        triage_test(test, by=triaged["alice"], note=f"note {n}")
    response = admin_client.get(f"/admin/events/testcase/{test.pk}/change/")
    formsets = {fs.formset.prefix: fs for fs in response.context["inline_admin_formsets"]}
    rows = [form.original for form in formsets["triage_events"]]
    assert len(rows) == 20 and rows[0].message.startswith("Triage note edited")
    assert [r.pk for r in rows] == sorted((r.pk for r in rows), reverse=True)
    assert f"{EVENTS}?test_case__id__exact={test.pk}" in response.content.decode()
    full = admin_client.get(EVENTS, {"test_case__id__exact": str(test.pk)})
    assert full.context["cl"].result_count == 23


# ---------------------------------------------------------------- owners' targets


def known_owner(name: str) -> Owner:
    return Owner.objects.create(key=name.casefold(), name=name, first_seen_at=timezone.now())


def post_target(client, url=f"{TARGETS}add/", **fields):
    data = {"owner": "", "triage_days": "", "fix_days": ""} | {k: str(v) for k, v in fields.items()}
    return client.post(url, data)


def errors(response) -> str:
    return str(response.context["adminform"].form.errors)


def test_owner_targets_are_stored_by_key(admin_client):
    make_history(1, 2)
    assert post_target(admin_client, owner="@Acme/Web", triage_days=2).status_code == 302
    assert post_target(admin_client, owner="(No Owner)", fix_days=21).status_code == 302
    assert dict(OwnerTarget.objects.values_list("owner_key", "fix_days")) == {"@acme/web": None, "": 21}
    page = admin_client.get(TARGETS).content.decode()
    assert "(no owner)" in page and "14 (default)" in page and "3 (default)" in page
    target = OwnerTarget.objects.get(owner_key="@acme/web")
    form = admin_client.get(f"{TARGETS}{target.pk}/change/")
    assert (
        'list="known-owners"' in form.content.decode()
        and '<datalist id="known-owners">' in form.content.decode()
    )
    assert (
        post_target(
            admin_client, f"{TARGETS}{target.pk}/change/", owner="@acme/WEB", triage_days=4
        ).status_code
        == 302
    )
    assert OwnerTarget.objects.get(pk=target.pk).triage_days == 4


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"owner": "@a", "triage_days": 0}, "at least 1"),
        ({"owner": "@a", "fix_days": -3}, "at least 1"),
        ({"owner": "@a", "fix_days": "two"}, "Enter a whole number."),
        ({"owner": "@a"}, "Set a triage or a fix target"),
        ({"owner": "  ", "fix_days": 3}, "This field is required."),
        ({"owner": "@WEB", "fix_days": 3}, "already has targets"),
        # Past the timedelta range (and the calendar's), every page showing targets answered 500.
        ({"owner": "@a", "fix_days": 2**40}, "at most 3650 days"),
        ({"owner": "@a", "triage_days": 3651}, "at most 3650 days"),
        # "ß" folds to "ss": 255 characters made a 510-character key (PostgreSQL: 500).
        ({"owner": "ß" * 255, "fix_days": 3}, "too long"),
        # An owner never seen (a typo) would match no test: its targets did nothing.
        (
            {"owner": "@acme/wbe", "fix_days": 3},
            "No owner &quot;@acme/wbe&quot; is known yet: owners come from the tests&#x27; CODEOWNERS",
        ),
    ],
)
def test_bad_owner_targets_are_refused_with_a_clear_message(admin_client, fields, message):
    known_owner("@a")
    OwnerTarget.objects.create(owner_key="@web", fix_days=9)
    response = post_target(admin_client, **fields)
    assert response.status_code == 200 and message in errors(response)
    assert OwnerTarget.objects.count() == 1


def test_only_known_owners_get_targets(admin_client):
    known_owner("@Acme/Web")
    response = post_target(admin_client, owner="@acme/wbe", triage_days=2)
    assert response.status_code == 200
    assert "No owner &quot;@acme/wbe&quot; is known yet" in errors(response)
    assert not OwnerTarget.objects.exists()
    # Any case of a known owner, and "(no owner)" (tests without owners), are accepted.
    assert post_target(admin_client, owner="@ACME/WEB", triage_days=2).status_code == 302
    assert post_target(admin_client, owner="(no owner)", fix_days=9).status_code == 302
    assert set(OwnerTarget.objects.values_list("owner_key", flat=True)) == {"@acme/web", ""}
    # An entry whose owner is no longer known stays editable under its own key, but is
    # not moved to an unknown one.
    gone = OwnerTarget.objects.create(owner_key="@gone", fix_days=5)
    change = f"{TARGETS}{gone.pk}/change/"
    assert post_target(admin_client, change, owner="@Gone", fix_days=6).status_code == 302
    assert OwnerTarget.objects.get(pk=gone.pk).fix_days == 6
    response = post_target(admin_client, change, owner="@gone2", fix_days=7)
    assert response.status_code == 200 and "No owner &quot;@gone2&quot;" in errors(response)
    assert OwnerTarget.objects.get(pk=gone.pk).owner_key == "@gone"


def test_triagers_view_owner_targets_but_do_not_change_them(login, triager):
    OwnerTarget.objects.create(owner_key="@web", fix_days=9)
    client = login(triager)
    assert client.get(TARGETS).status_code == 200
    assert client.get(f"{TARGETS}add/").status_code == 403
    assert post_target(client, owner="@x", fix_days=3).status_code == 403
    assert TestCase.objects.count() == 0 and OwnerTarget.objects.count() == 1
