"""The tests table: filters, sorting, pagination, the htmx partial and the CSV."""

import csv
import io
import uuid

import pytest
from django.urls import reverse

from events.demo import payloads
from events.models import Repository, TestCase
from tests.events.factories import MONITOR, at, deliver, fake_test

pytestmark = pytest.mark.django_db

URL = reverse("dashboard:tests")
CSV_URL = reverse("dashboard:tests-csv")
HTMX = {"HX-Request": "true", "HX-Target": "table"}
OTHER_REPO = payloads.FakeRepository(uuid.UUID(int=77), "https://github.com/acme/web")
INJECTION = '=HYPERLINK("http://evil.example","x")'
NORMAL = ["alpha_checkout", "beta_search", "gamma_idle"]


def change(test, when, previous, new):
    deliver(
        payloads.status_changed(
            test, at=when, previous=previous, new=new, monitor_id=MONITOR, monitor_type="pass_on_retry"
        )
    )


def seen(test, when):
    deliver(
        payloads.monitor_status_changed(
            test, at=when, monitor_id=MONITOR, monitor_type="failure_rate", status="resolved"
        )
    )


@pytest.fixture
def tests_data(django_user_model):
    """alpha: FLAKY since day 2, @Acme/Web, linux, quarantined, 50 %, 9 PRs.
    beta: BROKEN since day 4 (other repository), @acme/api, investigating (assigned), 20 %, 3 PRs.
    gamma: never changed, no owner, classname with "Special", 0 %, 0 PRs.
    =HYPERLINK(...): never changed, @acme/web (other spelling), 10 %, 5 PRs."""
    alpha = fake_test(
        1,
        name="alpha_checkout",
        codeowners=["@Acme/Web"],
        variant="linux",
        quarantined=True,
        failure_rate_last_7d=0.5,
        pull_requests_impacted_last_7d=9,
    )
    beta = fake_test(
        2,
        name="beta_search",
        codeowners=["@acme/api"],
        repository=OTHER_REPO,
        failure_rate_last_7d=0.2,
        pull_requests_impacted_last_7d=3,
    )
    gamma = fake_test(
        3,
        name="gamma_idle",
        classname="tests.deep.SpecialCase",
        file_path="tests/deep/path_gamma.py",
        codeowners=[],
    )
    hyp = fake_test(
        4,
        name=INJECTION,
        codeowners=["@acme/web"],
        failure_rate_last_7d=0.1,
        pull_requests_impacted_last_7d=5,
    )
    seen(alpha, at(1))
    change(alpha, at(2), "HEALTHY", "FLAKY")
    change(beta, at(3), "HEALTHY", "FLAKY")
    change(beta, at(4), "FLAKY", "BROKEN")
    seen(gamma, at(1))
    seen(hyp, at(1, 6))
    assignee = django_user_model.objects.create_user("triager")
    TestCase.objects.filter(pk=beta.id).update(triage_state=TestCase.Triage.INVESTIGATING, assignee=assignee)
    return {"alpha": alpha, "beta": beta, "gamma": gamma, "hyp": hyp}


def names(response) -> list[str]:
    return [t.name for t in response.context["page"]]


def normal(response) -> list[str]:
    """Names of the plainly named tests, in page order (collations differ on "=")."""
    return [n for n in names(response) if n in NORMAL]


# ---------------------------------------------------------------- access and empty states


@pytest.mark.parametrize("url", [URL, CSV_URL])
def test_login_required(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("url", [URL, CSV_URL])
def test_public_dashboard_setting(client, settings, url):
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = True
    assert client.get(url).status_code == 200


def test_empty_state(reader_client):
    response = reader_client.get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert "No tests yet" in body
    assert 'id="table"' in body
    csv_rows = read_csv(reader_client.get(CSV_URL))
    assert len(csv_rows) == 1  # the header only


def test_empty_filter_result_says_so(reader_client, tests_data):
    body = reader_client.get(URL, {"q": "no-such-test"}).content.decode()
    assert "No test matches these filters" in body


# ---------------------------------------------------------------- the page


def test_page_lists_tests_with_their_columns(reader_client, tests_data):
    response = reader_client.get(URL, {"sort": "name"})
    assert response.status_code == 200
    body = response.content.decode()
    assert set(names(response)) == {*NORMAL, INJECTION}
    for text in (
        "alpha_checkout",
        "tests.deep.SpecialCase",  # classname sub-line
        "tests/deep/path_gamma.py",  # file sub-line
        '<span class="tag variant">linux</span>',
        "acme/checkout",
        "acme/web",
        '<span class="badge status-flaky">Flaky</span>',
        '<span class="badge status-broken">Broken</span>',
        "@Acme/Web",  # owner shown as first seen
        "(no owner)",
        "50%",  # failure rate as a percentage
        "investigating",
        "triager",  # assignee
        'datetime="2026-05-02T00:00:00+00:00"',  # status since, machine-readable
        f'href="{reverse("dashboard:test-detail", args=[tests_data["alpha"].id])}"',
        f'href="{CSV_URL}?sort=name"',  # CSV of the current filter
    ):
        assert text in body, text
    # The filter bar: a GET form that swaps #table with htmx and pushes the URL.
    assert 'id="filters"' in body and 'method="get"' in body
    assert 'hx-target="#table"' in body and 'hx-push-url="true"' in body
    assert 'hx-trigger="submit, change from:(#filters select), input changed delay:350ms from:#id_q' in body
    assert '<button type="submit">Apply</button>' in body  # usable without JavaScript
    assert "{#" not in body and "{%" not in body  # no template syntax leaks into the page
    # Owner select: known owners by key, shown by name, plus "(no owner)".
    assert '<option value="none">(no owner)</option>' in body
    assert '<option value="@acme/web">@Acme/Web</option>' in body
    assert '<option value="linux">linux</option>' in body


def test_htmx_request_gets_only_the_table_partial(reader_client, tests_data):
    response = reader_client.get(URL, {"status": "flaky", "q": "", "owner": ""}, headers=HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="table"')
    assert "<html" not in body and 'id="filters"' not in body
    assert "alpha_checkout" in body and "beta_search" not in body and "gamma_idle" not in body
    # The pushed URL is the shareable one, without the empty fields.
    assert response["HX-Push-Url"] == f"{URL}?status=flaky"
    assert "HX-Request" in response["Vary"]
    # Sort and page links swap the table too (attributes inherited from #table), keeping
    # the filters, in the same request queue as the filter form.
    assert 'hx-target="#table" hx-swap="outerHTML" hx-push-url="true" hx-sync="#filters:replace"' in body
    assert 'hx-get="?status=flaky&amp;sort=name"' in body


def test_history_restore_request_gets_the_full_page(reader_client, tests_data):
    response = reader_client.get(URL, headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert "<html" in response.content.decode()


def test_other_htmx_targets_get_the_full_page(reader_client, tests_data):
    response = reader_client.get(URL, headers={"HX-Request": "true", "HX-Target": "something-else"})
    assert "<html" in response.content.decode()


# ---------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "FLAKY"}, ["alpha_checkout"]),
        ({"status": "flaky"}, ["alpha_checkout"]),
        ({"status": "Broken"}, ["beta_search"]),
        ({"status": "healthy"}, ["gamma_idle", INJECTION]),
        ({"owner": "@acme/web"}, ["alpha_checkout", INJECTION]),
        ({"owner": "@ACME/WEB"}, ["alpha_checkout", INJECTION]),
        ({"owner": "@acme/api"}, ["beta_search"]),
        ({"owner": "none"}, ["gamma_idle"]),
        ({"owner": "NONE"}, ["gamma_idle"]),
        ({"quarantined": "true"}, ["alpha_checkout"]),
        ({"quarantined": "True"}, ["alpha_checkout"]),
        ({"quarantined": "false"}, ["beta_search", "gamma_idle", INJECTION]),
        ({"variant": "linux"}, ["alpha_checkout"]),
        ({"triage": "investigating"}, ["beta_search"]),
        ({"triage": "new"}, ["alpha_checkout", "gamma_idle", INJECTION]),
        ({"q": "alpha"}, ["alpha_checkout"]),
        ({"q": "specialcase"}, ["gamma_idle"]),  # classname, any case
        ({"q": "DEEP/PATH"}, ["gamma_idle"]),  # file path
        ({"q": "  beta  "}, ["beta_search"]),
        ({"status": "flaky", "owner": "@acme/web", "quarantined": "true"}, ["alpha_checkout"]),
        ({"status": "flaky", "owner": "none"}, []),
    ],
)
def test_filters(reader_client, tests_data, params, expected):
    response = reader_client.get(URL, params)
    assert response.status_code == 200
    assert sorted(names(response)) == sorted(expected)


def test_repository_filter(reader_client, tests_data):
    web = Repository.objects.get(name="acme/web")
    response = reader_client.get(URL, {"repository": web.pk})
    assert names(response) == ["beta_search"]
    # The filter form carries the repository along.
    assert f'<input type="hidden" name="repository" value="{web.pk}">' in response.content.decode()


@pytest.mark.parametrize(
    "params",
    [
        {"status": "bogus"},
        {"owner": "@nobody/here"},
        {"quarantined": "maybe"},
        {"variant": "plan9"},
        {"triage": "someday"},
        {"sort": "-nonsense"},
        {"repository": "not-a-number"},
        {"repository": "99999"},
        {"period": "forever"},
        {"page": "abc"},
        {"page": "999"},
    ],
)
def test_bad_values_are_ignored(reader_client, tests_data, params):
    response = reader_client.get(URL, params)
    assert response.status_code == 200
    assert len(names(response)) == 4
    csv_response = reader_client.get(CSV_URL, params)
    assert csv_response.status_code == 200 and len(read_csv(csv_response)) == 5


def test_filters_are_shown_selected(reader_client, tests_data):
    body = reader_client.get(
        URL, {"status": "flaky", "owner": "@ACME/WEB", "quarantined": "TRUE"}
    ).content.decode()
    assert '<option value="FLAKY" selected>' in body
    assert '<option value="@acme/web" selected>' in body
    assert '<option value="true" selected>' in body


# ---------------------------------------------------------------- sorting


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["alpha_checkout", "beta_search", "gamma_idle"]),
        ("-name", ["gamma_idle", "beta_search", "alpha_checkout"]),
        ("status", ["gamma_idle", "alpha_checkout", "beta_search"]),
        ("-status", ["beta_search", "alpha_checkout", "gamma_idle"]),
        ("status_since", ["gamma_idle", "alpha_checkout", "beta_search"]),  # never changed first
        ("-status_since", ["beta_search", "alpha_checkout", "gamma_idle"]),  # never changed last
        ("failure_rate", ["gamma_idle", "beta_search", "alpha_checkout"]),
        ("-failure_rate", ["alpha_checkout", "beta_search", "gamma_idle"]),
        ("prs_impacted", ["gamma_idle", "beta_search", "alpha_checkout"]),
        ("-prs_impacted", ["alpha_checkout", "beta_search", "gamma_idle"]),
    ],
)
def test_sorting(reader_client, tests_data, sort, expected):
    response = reader_client.get(URL, {"sort": sort})
    assert normal(response) == expected
    assert response.context["sort"] == sort


def test_sort_headers_toggle_direction(reader_client, tests_data):
    body = reader_client.get(URL, {"sort": "name", "status": "healthy"}).content.decode()
    # The sorted column links to the other direction and says how it is sorted...
    assert 'aria-sort="ascending"' in body
    assert 'href="?sort=-name&amp;status=healthy"' in body
    # ...the others to their natural first direction (names A-Z, numbers high to low).
    assert 'href="?sort=-failure_rate&amp;status=healthy"' in body
    assert 'href="?sort=-status&amp;status=healthy"' in body
    body = reader_client.get(URL, {"sort": "-name"}).content.decode()
    assert 'aria-sort="descending"' in body and 'href="?sort=name"' in body
    # Default sort: status since, newest first.
    body = reader_client.get(URL).content.decode()
    assert 'href="?sort=status_since"' in body


def test_sort_travels_with_the_filter_form(reader_client, tests_data):
    body = reader_client.get(URL, {"sort": "-failure_rate"}, headers=HTMX).content.decode()
    assert '<input type="hidden" name="sort" value="-failure_rate" form="filters">' in body


# ---------------------------------------------------------------- pagination


def test_pagination_keeps_filters_and_sort(reader_client, tests_data, monkeypatch):
    monkeypatch.setattr("dashboard.views.tests.PAGE_SIZE", 2)
    response = reader_client.get(URL, {"sort": "-failure_rate", "quarantined": "false"})
    page = response.context["page"]
    assert page.paginator.num_pages == 2 and len(names(response)) == 2
    body = response.content.decode()
    assert "Page 1 of 2" in body
    assert 'href="?sort=-failure_rate&amp;quarantined=false&amp;page=2"' in body
    assert 'hx-get="?sort=-failure_rate&amp;quarantined=false&amp;page=2"' in body
    second = reader_client.get(URL, {"sort": "-failure_rate", "quarantined": "false", "page": 2})
    assert normal(second) == ["gamma_idle"]
    assert "Page 2 of 2" in second.content.decode()
    # A new filter or sort starts again on page 1.
    assert 'href="?sort=failure_rate&amp;quarantined=false"' in second.content.decode()


# ---------------------------------------------------------------- CSV


def read_csv(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    content = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(content)))


def test_csv_columns_rows_and_escaping(reader_client, tests_data):
    response = reader_client.get(CSV_URL, {"sort": "name"})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="flakyboard-tests-')
    rows = read_csv(response)
    assert rows[0] == [
        "id",
        "name",
        "classname",
        "file_path",
        "repository",
        "status",
        "status_since",
        "owners",
        "quarantined",
        "variant",
        "failure_rate_last_7d",
        "pull_requests_impacted_last_7d",
        "triage_state",
        "assignee",
        "triage_note",
        "latest_investigation_confidence",
        "trunk_url",
        "dashboard_url",
    ]
    by_name = {row[1]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert len(by_name) == 4
    alpha = by_name["alpha_checkout"]
    assert alpha["id"] == str(tests_data["alpha"].id)
    assert alpha["repository"] == "acme/checkout"
    assert alpha["status"] == "FLAKY"
    assert alpha["status_since"] == "2026-05-02T00:00:00+00:00"
    # Owners start with "@", a formula trigger too: escaped like any untrusted cell.
    assert alpha["owners"] == "@Acme/Web"  # a handle cannot call a function
    assert alpha["quarantined"] == "true"
    assert alpha["variant"] == "linux"
    assert alpha["failure_rate_last_7d"] == "0.5"
    assert alpha["pull_requests_impacted_last_7d"] == "9"
    assert alpha["triage_state"] == "new" and alpha["assignee"] == ""
    beta = by_name["beta_search"]
    assert beta["triage_state"] == "investigating" and beta["assignee"] == "triager"
    assert by_name["gamma_idle"]["status_since"] == "" and by_name["gamma_idle"]["owners"] == ""
    # The untrusted name that a spreadsheet would run as a formula is defused.
    assert "'" + INJECTION in by_name
    assert INJECTION not in by_name


def test_csv_joins_several_owners_with_semicolons(reader_client):
    deliver(
        payloads.monitor_status_changed(
            fake_test(9, codeowners=["@acme/web", "@acme/api"]),
            at=at(1),
            monitor_id=MONITOR,
            monitor_type="failure_rate",
            status="resolved",
        )
    )
    rows = read_csv(reader_client.get(CSV_URL))
    assert rows[1][7] == "@acme/api;@acme/web"


def test_csv_applies_the_filters(reader_client, tests_data):
    rows = read_csv(reader_client.get(CSV_URL, {"status": "flaky", "owner": "@ACME/WEB"}))
    assert [row[1] for row in rows[1:]] == ["alpha_checkout"]
    rows = read_csv(reader_client.get(CSV_URL, {"owner": "none"}))
    assert [row[1] for row in rows[1:]] == ["gamma_idle"]
    rows = read_csv(reader_client.get(CSV_URL, {"sort": "-prs_impacted", "quarantined": "false"}))
    assert [row[1] for row in rows[1:] if row[1] in NORMAL] == ["beta_search", "gamma_idle"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("@acme/web", "@acme/web"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        (0.25, 0.25),
    ],
)
def test_csv_cells_are_made_safe_by_the_shared_rule(value, expected):
    from events.untrusted import csv_safe

    assert csv_safe(value) == expected


# ---------------------------------------------------------------- untrusted names


def test_hostile_names_are_escaped(reader_client):
    deliver(
        payloads.monitor_status_changed(
            fake_test(
                5,
                name="<script>alert('name')</script>",
                classname="<img src=x onerror=alert(1)>",
                file_path='"><svg onload=alert(1)>',
                codeowners=["<b onmouseover=alert(1)>@evil</b>"],
                variant="<i>v</i>",
            ),
            at=at(1),
            monitor_id=MONITOR,
            monitor_type="failure_rate",
            status="resolved",
        )
    )
    for params in ({}, {"variant": "<i>v</i>"}):
        body = reader_client.get(URL, params).content.decode()
        assert "<script>alert(" not in body
        assert "&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;" in body
        assert "<img src=x" not in body and "<svg" not in body and "<b onmouseover" not in body
        assert "<i>v</i>" not in body


# ---------------------------------------------------------------- query budgets

# Session, user, owner and variant choices, repository choices, count, rows, owners.
PAGE_BUDGET = 10
CSV_BUDGET = 8


@pytest.mark.parametrize("size", [10, 40])
def test_page_query_budget_does_not_grow(reader_client, load_demo, django_assert_max_num_queries, size):
    load_demo(tests=size, days=30)
    with django_assert_max_num_queries(PAGE_BUDGET):
        response = reader_client.get(URL, {"status": "flaky", "sort": "-failure_rate"})
    assert response.status_code == 200
    with django_assert_max_num_queries(PAGE_BUDGET):
        assert reader_client.get(URL, headers=HTMX).status_code == 200


@pytest.mark.parametrize("size", [10, 40])
def test_csv_query_budget_does_not_grow(reader_client, load_demo, django_assert_max_num_queries, size):
    load_demo(tests=size, days=30)
    with django_assert_max_num_queries(CSV_BUDGET):
        rows = read_csv(reader_client.get(CSV_URL))
    assert len(rows) == size + 1
