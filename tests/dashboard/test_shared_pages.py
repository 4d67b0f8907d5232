"""Pages shared between readers (dashboard/shared_pages.py): the same page as computed for
each reader, shared within one audience for FLAKYBOARD_SHARED_PAGE_SECONDS, never across
audiences, never older than a user's own write; fragments are never shared."""

import re
import time

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dashboard import shared_pages
from events.models import Owner, TestCase
from tests.dashboard.test_test_detail import change, triage_url
from tests.events.factories import at, fake_test

pytestmark = pytest.mark.django_db

SHARED_URLS = [
    "/",
    "/?period=all",
    "/tests/",
    "/tests/?status=FLAKY&sort=-failure_rate",
    "/tests/?sort=-impact",
    "/codeowners/",
    "/codeowners/none/",
    "/monitors/",
    "/investigations/",
    "/quarantine/",
    "/digest/",
]


@pytest.fixture
def shared(settings, monkeypatch):
    settings.FLAKYBOARD_SHARED_PAGE_SECONDS = 10
    # The background computation runs at once, in the test's thread and transaction (one
    # test below runs it on the refresher thread).
    monkeypatch.setattr(shared_pages, "_submit", lambda fn, *args: fn(*args))
    caches[settings.SHARED_PAGE_CACHE].clear()
    yield settings
    caches[settings.SHARED_PAGE_CACHE].clear()


def main(response) -> str:
    assert response.status_code == 200, response.status_code
    return re.search(r"<main>(.*)</main>", response.content.decode(), re.S).group(1)


def as_of_any_moment(html: str) -> str:
    """A page with "now" blanked: a test's timelines end their open bar and their axis
    now, in milliseconds and to the microsecond."""
    html = re.sub(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\.\d+(\+00:00)?", "<now>", html)
    return re.sub(r"\b\d{7,}\.\d+\b", "<ms>", html)


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_shared_page_is_the_page_each_reader_would_have_computed(load_demo, settings, staff, user):
    load_demo(tests=12, days=20)
    # The first owner by name: ids start elsewhere than 1 on PostgreSQL after other tests.
    owner = reverse("dashboard:codeowner-detail", args=[Owner.objects.order_by("name").first().pk])
    test = TestCase.objects.order_by("name").first()
    for who in (staff, user):
        client = client_of(who)
        # A test's page is shared between readers who cannot triage (below: staff can).
        test_page = [reverse("dashboard:test-detail", args=[test.pk])] if who is user else []
        for url in [*SHARED_URLS, owner, *test_page]:
            settings.FLAKYBOARD_SHARED_PAGE_SECONDS = 0
            computed = as_of_any_moment(main(client.get(url)))
            settings.FLAKYBOARD_SHARED_PAGE_SECONDS = 10
            caches[settings.SHARED_PAGE_CACHE].clear()
            with CaptureQueriesContext(connection) as first:
                assert as_of_any_moment(main(client.get(url))) == computed, url
            with CaptureQueriesContext(connection) as again:
                assert as_of_any_moment(main(client.get(url))) == computed, url
            # Taken from the shared copy: the shell's queries (the session, the user,
            # the repositories of the scope selector; the owner page finds its owner first) and
            # the copy's (the database cache).
            # A test's page looks up its test and whether the reader may triage (two
            # queries: the user's and their groups' permissions).
            extra = 1 if url == owner else 3 if url in test_page else 0
            # (Not counted: the savepoint around the cache's statements, only taken
            # inside a transaction such as the test's.)
            statements = [q for q in again if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
            assert len(statements) <= 4 + extra < len(first), (
                url,
                [q["sql"] for q in again],
            )


def test_readers_of_one_audience_share_a_page_until_it_expires(shared, staff, django_user_model):
    one, two = (client_of(django_user_model.objects.create_user(name)) for name in ("one", "two"))
    change(fake_test(1), at(3), "HEALTHY", "FLAKY")
    assert "test_case_1" in main(one.get("/tests/"))
    change(fake_test(2), at(4), "HEALTHY", "BROKEN")
    # Another reader of the same audience gets the page as it was computed a moment ago...
    page = main(two.get("/tests/"))
    assert "test_case_1" in page and "test_case_2" not in page
    # ...staff are another audience (their page links to deliveries): computed for them.
    assert "test_case_2" in main(client_of(staff).get("/tests/"))
    # Another page, or the same page with other filters, is computed anew.
    assert "test_case_2" in main(two.get("/tests/?status=BROKEN"))


class Clock:
    """shared_pages' clock (its `time` module), moved by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(shared_pages, "time", clock)
    return clock


def test_an_old_page_is_served_once_more_while_it_is_computed_again(shared, user, clock):
    reader = client_of(user)
    change(fake_test(1), at(3), "HEALTHY", "FLAKY")
    assert "test_case_2" not in main(reader.get("/tests/"))
    change(fake_test(2), at(4), "HEALTHY", "BROKEN")
    clock.now += 9.9
    assert "test_case_2" not in main(reader.get("/tests/"))  # younger than 10 s
    clock.now += 0.2
    # Older than the interval: served as it is, and computed again behind it...
    assert "test_case_2" not in main(reader.get("/tests/"))
    # ...for the next reader.
    assert "test_case_2" in main(reader.get("/tests/"))


def test_a_page_twice_the_interval_old_is_computed_for_its_reader(shared, user, clock):
    reader = client_of(user)
    change(fake_test(1), at(3), "HEALTHY", "FLAKY")
    assert "test_case_2" not in main(reader.get("/tests/"))
    change(fake_test(2), at(4), "HEALTHY", "BROKEN")
    clock.now += 20
    assert "test_case_2" in main(reader.get("/tests/"))


def test_a_failed_background_computation_is_logged_and_tried_again(shared, caplog):
    def fails() -> None:
        raise RuntimeError("database went away")

    shared_pages.refresh_in_background("k", fails)
    assert "computing it in the background failed" in caplog.text
    assert "k" not in shared_pages._refreshing  # the next old copy tries again
    computed = []
    shared_pages.refresh_in_background("k", lambda: computed.append(1))
    assert computed == [1]


@pytest.mark.django_db(transaction=True)
def test_the_background_computation_runs_on_its_own_thread(settings, django_user_model):
    """The real refresher thread with its own database connection: the reader gets the old
    copy at once, and the copy in the cache is replaced soon after."""
    settings.FLAKYBOARD_SHARED_PAGE_SECONDS = 2
    cache = caches[settings.SHARED_PAGE_CACHE]
    cache.clear()
    reader = client_of(django_user_model.objects.create_user("reader"))
    change(fake_test(1), at(3), "HEALTHY", "FLAKY")
    main(reader.get("/tests/"))
    change(fake_test(2), at(4), "HEALTHY", "BROKEN")
    time.sleep(2.05)  # the database cache keeps it 4 s, to the second: 3 s at least
    assert "test_case_2" not in main(reader.get("/tests/"))
    deadline = time.monotonic() + 30
    while "test_case_2" not in main(reader.get("/tests/")):
        assert time.monotonic() < deadline, "the page was not computed again in the background"
        time.sleep(0.05)
    cache.clear()
    # The refresher keeps its connection between pages (CONN_MAX_AGE): closed here, or the
    # test database could not be dropped at the end of the run.
    shared_pages._refresher.submit(connections.close_all).result(timeout=30)


def test_a_triage_write_shows_at_once_for_everyone(
    shared, staff, django_user_model, django_capture_on_commit_callbacks
):
    test = fake_test(1)
    change(test, at(3), "HEALTHY", "FLAKY")
    colleague = client_of(django_user_model.objects.create_user("colleague", is_staff=True))
    triager = client_of(staff)
    assert "triage-new" in main(colleague.get("/tests/"))
    assert "triage-new" in main(triager.get("/tests/"))  # the shared copy
    with django_capture_on_commit_callbacks(execute=True):
        response = triager.post(triage_url(test), {"triage_state": "investigating", "triage_note": "on it"})
    assert response.status_code in (200, 302)
    assert response.cookies["flakyboard_primary"].value == "1"
    page = main(triager.get("/tests/"))
    assert "triage-investigating" in page and "triage-new" not in page
    # The write dropped every shared copy: the colleague's page is computed again too.
    assert "triage-investigating" in main(colleague.get("/tests/"))


def test_a_triage_through_the_api_shows_in_its_authors_browser(
    shared, staff, django_capture_on_commit_callbacks
):
    """An API client keeps no cookie for the user's browser: the triage write itself drops
    the shared copies."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    test = fake_test(1)
    change(test, at(3), "HEALTHY", "FLAKY")
    browser = client_of(staff)
    assert "triage-new" in main(browser.get("/tests/"))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(f"/api/v1/test-cases/{test.id}/", {"triage_state": "fixed"}, format="json")
    assert response.status_code == 200, response.content
    assert "triage-fixed" in main(browser.get("/tests/"))


def test_a_fresh_reads_cookie_computes_for_its_sender_and_stores_nothing(shared, user):
    """The cookie is the client's to send: it must not let anyone write the shared copy."""
    reader = client_of(user)
    change(fake_test(1), at(3), "HEALTHY", "FLAKY")
    assert "test_case_2" not in main(reader.get("/tests/"))
    change(fake_test(2), at(4), "HEALTHY", "BROKEN")
    sender = client_of(user)
    sender.cookies["flakyboard_primary"] = "1"
    assert "test_case_2" in main(sender.get("/tests/"))
    assert "test_case_2" not in main(reader.get("/tests/"))  # the shared copy, unchanged


def test_a_page_is_shared_per_address(shared, staff):
    """The empty installation's card shows the webhook URL built from the request's host
    and scheme: a copy made for one address is never shown at another."""
    shared.ALLOWED_HOSTS = ["flakyboard.example.com", "10.0.0.5"]
    internal = main(client_of(staff).get("/", HTTP_HOST="10.0.0.5:8000"))
    assert "http://10.0.0.5:8000/webhooks/trunk/" in internal
    public = main(client_of(staff).get("/", HTTP_HOST="flakyboard.example.com", secure=True))
    assert "https://flakyboard.example.com/webhooks/trunk/" in public
    assert "10.0.0.5" not in public


def test_unknown_parameters_are_computed_not_shared(shared, user):
    reader = client_of(user)
    change(fake_test(1), at(3), "HEALTHY", "FLAKY")
    cache = caches[shared.SHARED_PAGE_CACHE]
    for n in range(5):
        main(reader.get(f"/digest/?junk={n}"))
    assert cache.get(shared_pages.GENERATION_KEY) is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM flakyboard_shared_pages")
        assert cursor.fetchone()[0] == 0
    main(reader.get("/digest/?period=7d"))  # known: shared
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM flakyboard_shared_pages")
        assert cursor.fetchone()[0] == 1


def test_a_failing_cache_costs_the_sharing_not_the_page(shared, user, caplog):
    """The cache's table missing (code deployed before `migrate`), or its query failing:
    every page is computed and answered, and the failure logged."""
    reader = client_of(user)
    change(fake_test(1), at(3), "HEALTHY", "FLAKY")
    assert "test_case_1" in main(reader.get("/tests/"))
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE flakyboard_shared_pages")
    for url in SHARED_URLS:
        assert reader.get(url).status_code == 200, url
    assert "the cache failed (read)" in caplog.text
    call_command("createcachetable", verbosity=0)  # as `migrate` does


def test_a_failing_claim_serves_the_old_copy_and_tries_again(shared, user, clock, monkeypatch):
    reader = client_of(user)
    change(fake_test(1), at(3), "HEALTHY", "FLAKY")
    main(reader.get("/tests/"))
    clock.now += 11
    cache = caches[shared.SHARED_PAGE_CACHE]

    def fails(*args, **kwargs):
        raise RuntimeError("cache down")

    monkeypatch.setattr(cache, "add", fails)
    assert "test_case_1" in main(reader.get("/tests/"))  # the old copy, served
    assert shared_pages._refreshing == set()  # the next reader tries again


def test_fragments_are_never_shared(shared, user):
    reader = client_of(user)
    change(fake_test(1), at(3), "HEALTHY", "FLAKY")
    assert "test_case_1" in main(reader.get("/"))
    change(fake_test(2), at(4), "HEALTHY", "BROKEN")
    assert "test_case_2" not in main(reader.get("/"))  # the shared page
    fragment = reader.get("/", headers={"HX-Request": "true", "HX-Target": "recent-changes"})
    assert "test_case_2" in fragment.content.decode()
    table = reader.get("/tests/", headers={"HX-Request": "true", "HX-Target": "table"})
    assert "test_case_2" in table.content.decode()


def test_a_hostile_query_string_is_a_key_like_any_other(shared, user):
    """The key is a hash: any query string (long, with newlines, control or non-ASCII
    characters) names its own entry, and a bad filter value is the page's own error."""
    reader = client_of(user)
    change(fake_test(1), at(3), "HEALTHY", "FLAKY")
    for query in ("?q=" + "x" * 5000, "?status=%0A%00%FF", "?owner=%E2%80%AE%F0%9F%92%A5", "?page=-1"):
        assert reader.get("/tests/" + query).status_code in (200, 400)
        assert reader.get("/tests/" + query).status_code in (200, 400)


def test_shared_pages_are_off_at_zero(settings, user):
    settings.FLAKYBOARD_SHARED_PAGE_SECONDS = 0
    reader = client_of(user)
    change(fake_test(1), at(3), "HEALTHY", "FLAKY")
    main(reader.get("/tests/"))
    change(fake_test(2), at(4), "HEALTHY", "BROKEN")
    assert "test_case_2" in main(reader.get("/tests/"))


def test_a_triagers_test_page_is_their_own(shared, staff, user):
    """Staff can triage: their test page holds forms with their CSRF token, never shared;
    a reader's is shared and has no form."""
    test = fake_test(1)
    change(test, at(3), "HEALTHY", "FLAKY")
    url = reverse("dashboard:test-detail", args=[test.id])
    reader, triager = client_of(user), client_of(staff)
    assert "csrfmiddlewaretoken" not in main(reader.get(url))
    first, second = main(triager.get(url)), main(triager.get(url))
    assert "csrfmiddlewaretoken" in first and first != second  # each render its own token
    change(test, at(4), "FLAKY", "BROKEN")
    assert "badge status-broken" in main(triager.get(url))
    assert "badge status-broken" not in main(reader.get(url))  # the shared copy


def test_the_refresher_reads_the_primary_once_the_replica_failed(shared):
    """The refresher carries the choice of the request that started it; a replica that
    failed since is not read (decided once, before the page is computed)."""
    from django.db import OperationalError

    from flakyboard import db_router

    seen = []
    token = db_router._from_replica.set(True)
    db_router.replica_failed(OperationalError("the replica is down"))
    try:
        shared_pages.refresh_in_background(
            "replica-choice", lambda: seen.append(db_router._from_replica.get())
        )
        assert db_router._from_replica.get() is True  # the request's own choice stays
    finally:
        db_router.REPLICA_HEALTH.close()
        db_router._from_replica.reset(token)
    assert seen == [False]
