"""The test case change list: columns, default order, every filter, search."""

from datetime import timedelta

import pytest

from events.demo.payloads import monitor_status_changed
from events.models import TestCase
from events.palette import STATUS_COLORS
from tests.admin.factories import BASE, CHECKOUT, FAILURE_RATE, flaky, ingest, investigate, make_test

pytestmark = pytest.mark.django_db
URL = "/admin/events/testcase/"


def names(response) -> list[str]:
    return [t.name for t in response.context["cl"].result_list]


@pytest.fixture
def tests(make_user):
    """Four tests that differ in every filtered attribute."""
    a = make_test(0, name="test_alpha", codeowners=["@Acme/Web"], variant="", quarantined=True)
    b = make_test(1, name="test_bravo", codeowners=["@acme/payments", "@acme/web"], variant="linux")
    c = make_test(2, name="test_charlie", codeowners=[], variant="", classname="tests.search.Special")
    d = make_test(3, name="test_delta", codeowners=["@acme/payments"], file_path="tests/odd/path_x.py")
    flaky(a, BASE)
    flaky(b, BASE + timedelta(hours=1), new="BROKEN")
    flaky(c, BASE + timedelta(hours=2))
    # d never changed status: only a monitor event.
    ingest(
        monitor_status_changed(
            d,
            at=BASE + timedelta(hours=3),
            monitor_id=FAILURE_RATE,
            monitor_type="failure_rate",
            status="active",
        )
    )
    investigate(a, BASE + timedelta(hours=4), confidence=0.42)
    investigate(a, BASE + timedelta(hours=5), confidence=0.91)  # the latest one is shown
    investigate(c, BASE + timedelta(hours=6), confidence=0.6)
    return {"a": a, "b": b, "c": c, "d": d}


def test_list_shows_every_column(admin_client, tests):
    response = admin_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    row = {t.name: t for t in response.context["cl"].result_list}
    assert set(row) == {"test_alpha", "test_bravo", "test_charlie", "test_delta"}
    for header in (
        "Test",
        "Status",
        "Since (UTC)",
        "Quar.",
        "Owners",
        "Fail 7d",
        "PRs 7d",
        "Triage",
        "Inv. conf.",
    ):
        assert f">{header}<" in html or f">{header}</a>" in html, header
    # Nine columns fit 1280 px: the repository shows under the name, the assignee under triage.
    assert ">Repository</a>" not in html and ">Assignee</a>" not in html
    assert "acme/checkout" in html and "acme/web" in html
    # Status badges in the dashboard's palette (events/palette.py)
    assert STATUS_COLORS["FLAKY"] in html
    assert STATUS_COLORS["BROKEN"] in html
    assert STATUS_COLORS["HEALTHY"] in html  # test_delta never changed
    assert "@acme/payments, @Acme/Web" in html  # owners as first seen, ordered by key
    assert "0.91 high" in html  # latest investigation's confidence and band
    assert "0.60 medium" in html
    assert "0.42" not in html
    assert ">New<" in html
    assert "tests.search.Special" in html  # classname under the name


def test_default_order_is_most_recently_changed_first_never_changed_last(admin_client, tests):
    assert names(admin_client.get(URL)) == ["test_charlie", "test_bravo", "test_alpha", "test_delta"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status__exact=FLAKY", {"test_alpha", "test_charlie"}),
        ("status__exact=BROKEN", {"test_bravo"}),
        ("status__exact=HEALTHY", {"test_delta"}),
        ("quarantined__exact=1", {"test_alpha"}),
        ("quarantined__exact=0", {"test_bravo", "test_charlie", "test_delta"}),
        ("owner=%40acme%2Fweb", {"test_alpha", "test_bravo"}),  # case-insensitive: @Acme/Web too
        ("owner=%40acme%2Fpayments", {"test_bravo", "test_delta"}),
        ("owner=__none__", {"test_charlie"}),
        ("investigated=yes", {"test_alpha", "test_charlie"}),
        ("investigated=no", {"test_bravo", "test_delta"}),
        ("variant=linux", {"test_bravo", "test_delta"}),
        ("variant=__none__", {"test_alpha", "test_charlie"}),
        ("status__exact=FLAKY&owner=%40acme%2Fweb", {"test_alpha"}),
    ],
)
def test_filters(admin_client, tests, query, expected):
    response = admin_client.get(f"{URL}?{query}")
    assert response.status_code == 200
    assert set(names(response)) == expected


def test_repository_filter(admin_client, tests):
    repo_id = TestCase.objects.get(name="test_alpha").repository_id
    response = admin_client.get(f"{URL}?repository__id__exact={repo_id}")
    assert set(names(response)) == {"test_alpha", "test_charlie"}
    assert str(CHECKOUT.html_url.rsplit("/", 2)[-2]) in response.content.decode()


def test_triage_state_and_assignee_filters(admin_client, admin_user, make_user, tests):
    alice = make_user("alice")
    TestCase.objects.filter(name="test_alpha").update(triage_state="investigating", assignee=admin_user)
    TestCase.objects.filter(name="test_bravo").update(triage_state="fixed", assignee=alice)
    assert set(names(admin_client.get(f"{URL}?triage_state__exact=investigating"))) == {"test_alpha"}
    assert set(names(admin_client.get(f"{URL}?triage_state__exact=new"))) == {"test_charlie", "test_delta"}
    assert set(names(admin_client.get(f"{URL}?assignee=me"))) == {"test_alpha"}
    assert set(names(admin_client.get(f"{URL}?assignee={alice.pk}"))) == {"test_bravo"}
    assert set(names(admin_client.get(f"{URL}?assignee=__none__"))) == {"test_charlie", "test_delta"}
    assert names(admin_client.get(f"{URL}?assignee=nonsense")) == []


def test_filter_sidebar_lists_owners_variants_and_staff(admin_client, make_user, tests):
    make_user("alice")
    make_user("not_staff", staff=False)
    html = admin_client.get(URL).content.decode()
    for text in (
        "(no owner)",
        "@Acme/Web",
        "@acme/payments",
        "linux",
        "(none)",
        "Mine",
        "Unassigned",
        "alice",
    ):
        assert text in html, text
    assert "not_staff" not in html


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("alpha", {"test_alpha"}),
        ("TEST_BRAVO", {"test_bravo"}),  # case-insensitive
        ("search.Special", {"test_charlie"}),  # classname
        ("odd/path_x", {"test_delta"}),  # file path
        ("acme/pay", {"test_bravo", "test_delta"}),  # owner
        ("@ACME/WEB", {"test_alpha", "test_bravo"}),  # owner, any case
        ("bravo acme/pay", {"test_bravo"}),  # every word must match
        ("nothing-like-this", set()),
    ],
)
def test_search(admin_client, tests, term, expected):
    response = admin_client.get(URL, {"q": term})
    assert response.status_code == 200
    assert set(names(response)) == expected


def test_search_by_test_id(admin_client, tests):
    assert names(admin_client.get(URL, {"q": str(tests["c"].id)})) == ["test_charlie"]
    assert names(admin_client.get(URL, {"q": tests["c"].id.hex.upper()})) == ["test_charlie"]


def test_untrusted_text_is_escaped_in_the_list(admin_client):
    evil = make_test(9, name="<script>alert(1)</script>", codeowners=["@x/<b>bold</b>"], classname="<i>c</i>")
    flaky(evil, BASE)
    html = admin_client.get(URL).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<i>c</i>" not in html
