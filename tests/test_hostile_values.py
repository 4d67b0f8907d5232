"""Every page, admin view, CSV export and API endpoint answers for every value the
receiver accepts (issue 12: every stored value can be shown).

Hostile-but-valid deliveries go through the real receiver with real signatures; then
tests/crawl.py visits everything and checks that untrusted text stays escaped.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from events.demo import payloads
from events.models import Delivery, Owner, TestCase
from events.trunk import reader
from tests.crawl import crawl_everything
from tests.events.factories import deliver

# The oldest plausible event time (../shared/METRICS.md): anything earlier is rejected.
OLDEST = datetime(2000, 1, 1, tzinfo=UTC)

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
OWNERS = [
    "a\nb",  # a newline: the codeowners page answered 500 (reverse() of the owner URL)
    "@acme/web/",
    "/",
    "//",
    "a//b",
    "a?b=c&d",
    "#hash",
    "100%",
    "%2F%0A",
    "ünïcødé/🚀",
    "  padded  ",
    "x" * 255,
    "none",  # the URL parameter of "tests without owners"
    "None",
    "..",
    ".",
    "../admin",
    SCRIPT,
    "back\\slash",
    "tab\there",
    "123",  # all digits
    "@Acme/Web",
]
ODD = "<b>odd</b>\n?#%&\"'`\\ ünï 🚀 \u202e"


def long(text: str, length: int) -> str:
    return (text * (length // len(text) + 1))[:length]


def repo(n: int, url: str) -> payloads.FakeRepository:
    return payloads.FakeRepository(uuid.UUID(int=0xABC000 + n), url)


REPOSITORIES = [
    repo(1, "javascript:alert(1)"),
    repo(2, "github.com/acme/no scheme"),
    repo(3, "https://github.com/acme/with space/" + SCRIPT),
    repo(4, "https://" + long("h", 460) + ".example/acme/long"),  # 500 characters
    repo(5, "data:text/html,<script>alert(1)</script>"),
    repo(6, ""),  # no URL: named by its id
]


def hostile_tests() -> list[payloads.FakeTest]:
    tests = [
        payloads.FakeTest(
            id=uuid.UUID(int=0xF00000 + 1),
            name=long(ODD + SCRIPT, 1000),
            classname=long(IMG + ODD, 1000),
            file_path=long("dir/" + ODD + "/", 1000),
            repository=REPOSITORIES[0],
            codeowners=OWNERS,
            variant=long(ODD, 255),
            failure_rate_last_7d=1.0,
            pull_requests_impacted_last_7d=2**31 - 1,
        )
    ]
    for n, repository in enumerate([*REPOSITORIES[1:], None], start=2):
        tests.append(
            payloads.FakeTest(
                id=uuid.UUID(int=0xF00000 + n),
                name=f"{SCRIPT} test {n}",
                classname="" if n % 2 else f"{IMG}.Class{n}",
                file_path="" if n % 3 else f"{ODD}/test_{n}.py",
                repository=repository,
                codeowners=[OWNERS[n % len(OWNERS)]] if n % 4 else [],
                variant="" if n % 2 else ODD,
                failure_rate_last_7d=0.0,
                pull_requests_impacted_last_7d=0,
            )
        )
    return tests


def deep(levels: int):
    value: object = {"leaf": SCRIPT}
    for i in range(levels - 1):
        value = {f"level {i} {ODD}": value} if i % 2 else [value, i]
    return value


EVIDENCE = [
    deep(reader.EVIDENCE_MAX_DEPTH),  # the deepest the receiver accepts
    {"runs": [{"run": i, "ok": i % 3 == 0} for i in range(20_000)]},  # huge list
    list(range(50_000)),
    {ODD: SCRIPT, "nested": {"a": [1, {"b": None}]}, "empty": [], "n": 1e308},
    SCRIPT,
    12.5,
    True,
    [],
]


def events_for(tests: list[payloads.FakeTest], now: datetime) -> list[dict]:
    """A history per test: first seen at the oldest plausible time, changes since."""
    monitor_type = long("<i>type</i>\n?#%&" + ODD, 100)
    monitors = [uuid.UUID(int=0xE00000 + i) for i in range(3)]
    events: list[dict] = []
    for i, test in enumerate(tests):
        earlier = now - timedelta(minutes=30 + i)
        events.append(
            payloads.status_changed(
                test,
                at=OLDEST,
                previous="HEALTHY",
                new="FLAKY",
                monitor_id=monitors[0],
                monitor_type=monitor_type,
            )
        )
        events.append(
            payloads.status_changed(
                test, at=earlier, previous="FLAKY", new="BROKEN" if i % 2 else "HEALTHY",
                monitor_id=monitors[1], monitor_type="failure_rate",
            )
        )  # fmt: skip
        events.append(
            payloads.status_changed_v1(
                test, at=earlier + timedelta(seconds=1), previous="BROKEN", new="flaky", reason=ODD
            )
        )
        for j, evidence in enumerate(EVIDENCE if i == 0 else EVIDENCE[3:5]):
            events.append(
                payloads.monitor_status_changed(
                    test,
                    at=OLDEST + timedelta(days=j) if j % 2 else earlier + timedelta(seconds=j),
                    monitor_id=monitors[j % 3],
                    monitor_type=monitor_type if j % 3 == 0 else "pass_on_retry",
                    status="active" if j % 2 == 0 else "resolved",
                    evidence=evidence,
                )
            )
        for j, confidence in enumerate((0.0, 1.0)):
            events.append(
                payloads.investigation_completed(
                    test,
                    at=OLDEST if j == 0 else earlier,
                    investigation_id=uuid.UUID(int=0xD00000 + 10 * i + j),
                    confidence=confidence,
                    markdown_summary=f"# {ODD}\n\n{SCRIPT} [x](javascript:alert(1)) {IMG}\n\n"
                    + "> " * 50
                    + "deep quote",
                    failure_message=long(f"{SCRIPT}\n{IMG}\n", 5000),
                    facts=[
                        {"fact_type": long(ODD, 100), "content": f"{SCRIPT} {IMG}", "confidence": 0},
                        {"fact_type": "CI_LOGS", "content": "", "confidence": 1},
                        {"fact_type": "GIT_BLAME", "content": long(ODD, 3000), "confidence": None},
                    ],
                )
            )
        events.append(
            payloads.quarantining_setting_changed(
                test,
                at=earlier,
                previous=long(ODD, 64),
                updated="ALWAYS_QUARANTINE",
                actor_email=long(f"{SCRIPT}@{ODD}", 255),
                actor_name=long(ODD, 255),
                reason=long(ODD + SCRIPT, 2000),
            )
        )
    # Trunk's link to each test: an invalid IPv6 host made urlsplit() raise (500).
    links = {str(tests[0].id): "http://[::1", str(tests[1].id): "javascript:alert(1)"}
    links[str(tests[2].id)] = " https://app.trunk.io/a b/" + long("x", 960)
    for event in events:
        if event["test_case"]["id"] in links:
            event["test_case"]["html_url"] = links[event["test_case"]["id"]]
    return events


def escaped(url: str, response) -> None:
    """Untrusted text stays escaped on every HTML page (JSON and CSV carry it as data)."""
    if not response.get("Content-Type", "").startswith("text/html"):
        return
    html = response.content.decode()
    for raw in (SCRIPT, IMG, 'href="javascript:', 'href="data:', "<b>odd</b>", "<i>type</i>"):
        assert raw not in html, f"{url} shows {raw!r} unescaped"
    # Chart data: json_script keeps it inside its <script>, but Plotly reads a subset of
    # HTML in labels, names and titles (<a href>, <b>, <br>...): untrusted text in a chart
    # is escaped once more (dashboard/charts/base.py `_text`).
    for island in re.findall(r'<script id="[^"]*" type="application/json">(.*?)</script>', html, re.S):
        for text in _strings(json.loads(island)):
            for raw in (SCRIPT, IMG, "<b>odd</b>", "<i>type</i>"):
                assert raw not in text, f"{url} gives Plotly {raw!r} as HTML in chart data: {text[:80]!r}"


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


@pytest.fixture
def hostile(db, signed_post):
    now = datetime.now(UTC)
    sent = events_for(hostile_tests(), now)
    for payload in sent:
        response = signed_post(payload)
        assert response.status_code == 200, response.content
    return sent


@pytest.mark.django_db
def test_every_page_answers_for_hostile_values(hostile, admin_client):
    problems = list(
        Delivery.objects.exclude(outcome=Delivery.Outcome.PROCESSED).values_list("outcome", "error")
    )
    assert problems == [], problems
    assert Owner.objects.filter(name="a\nb").exists()
    assert TestCase.objects.filter(first_event_at=OLDEST).count() == len(hostile_tests())

    visited = crawl_everything(admin_client, check=escaped)

    owner_pages = [url for url in visited if url.startswith("/codeowners/") and url != "/codeowners/"]
    assert len({url.split("?")[0] for url in owner_pages}) >= Owner.objects.count() + 1  # and "(no owner)"
    for test in TestCase.objects.all():
        assert any(url.startswith(test.get_absolute_url()) for url in visited)
    assert any(url.startswith("POST /admin/events/testcase/ export_csv") for url in visited)
    assert any(url.startswith("/tests.csv") for url in visited)
    assert "/api/schema/" in visited
    assert any("/api/v1/stats/status-trend/?period=all" in url for url in visited)


@pytest.mark.django_db
def test_all_time_since_2000_stays_reasonably_sized(hostile, admin_client):
    """One event at 2000-01-01: period=all covers ~27 years, one row per day, no more."""
    days = (datetime.now(UTC).date() - OLDEST.date()).days + 1
    response = admin_client.get("/api/v1/stats/status-trend/", {"period": "all"})
    assert response.status_code == 200
    data = response.json()
    assert days - 1 <= len(data["series"]) <= days + 1
    assert len(response.content) < 3_000_000

    page = admin_client.get("/", {"period": "all"})
    assert page.status_code == 200
    assert len(page.content) < 3_000_000
    html = page.content.decode()
    figure = _chart(html, "trend-chart")
    assert figure is not None and len(figure["data"][0]["x"]) in (days - 1, days, days + 1)


def _chart(html: str, hint: str):
    """The first chart data island whose id contains `hint`."""
    marker = 'type="application/json">'
    for part in html.split('<script id="')[1:]:
        chart_id, _, rest = part.partition('"')
        if hint in chart_id:
            return json.loads(rest.split(marker, 1)[1].split("</script>", 1)[0])
    return None


@pytest.mark.django_db
def test_crawler_on_an_empty_database(admin_client):
    visited = crawl_everything(admin_client, follow_links=False)
    for url in ("/?period=all", "/codeowners/none/", "/api/schema/", "/api/v1/", "/admin/events/testcase/"):
        assert url in visited
    assert "/api/v1/stats/summary/?period=7d" in visited


@pytest.mark.django_db
def test_crawler_reports_every_failing_url(admin_client, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("dashboard.selectors.owners.owner_stats", broken)
    with pytest.raises(AssertionError, match=r"/codeowners/\?period=all: raised RuntimeError: boom"):
        crawl_everything(admin_client, follow_links=False)


@pytest.mark.django_db
def test_crawler_needs_a_superuser(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("staff", is_staff=True))
    with pytest.raises(AssertionError, match="superuser"):
        crawl_everything(client)


# Query parameters of the issue-15 pages and endpoints (fixes that held, quarantine,
# calibration, targets, the triage history): each bad value is a 400 naming it or is
# ignored (200), never a 500. PostgreSQL refuses NUL in text: the owner's page with one
# answered 500 there.
HOSTILE_PARAMS = {
    "/api/v1/stats/fixes/": ("owner", "period", "repository"),
    "/api/v1/stats/quarantine/": ("owner", "period", "repository"),
    "/api/v1/stats/calibration/": ("owner", "period", "repository", "fact_type"),
    "/api/v1/stats/targets/": ("owner", "period", "repository"),
    "/api/v1/triage-events/": ("test_case", "by", "via", "since", "until", "page_size", "cursor"),
    "/quarantine/": ("owner", "ready", "sort", "page", "repository"),
    "/digest/": ("owner", "period", "repository"),
    "/codeowners/": ("sort", "period", "repository"),
    "/investigations/": ("period", "repository", "verdict", "fact_type", "page"),
}
HOSTILE_VALUES = [
    "\x00",
    "a\x00b",
    "x" * 10_000,
    "ünï🚀\u202e",
    "-1",
    "1e9",
    str(2**63),
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    SCRIPT,
]


@pytest.mark.django_db
def test_hostile_query_parameters_are_400_or_ignored(admin_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": None, "user": None},
    }
    tests = hostile_tests()[:3]
    for payload in events_for(tests, datetime.now(UTC)):
        deliver(payload)
    test_id = tests[0].id
    params = {
        **HOSTILE_PARAMS,
        f"/api/v1/test-cases/{test_id}/triage-history/": ("since", "until", "by", "via"),
    }
    failures = []
    for url, names in params.items():
        for name in names:
            for value in HOSTILE_VALUES:
                for query in ({name: value}, {name: [value, "7d"]}):
                    status = admin_client.get(url, query).status_code
                    if status not in (200, 400):
                        failures.append(f"{url}?{name}={value[:20]!r}: {status}")
        for raw in ("owner=%FF%FE", "period=%C0%AF", "sort=%ED%A0%80", "a=%", "&" * 300):
            status = admin_client.get(url, QUERY_STRING=raw).status_code
            if status not in (200, 400):
                failures.append(f"{url}?{raw[:20]}: {status}")
    for owner in ("%00", "a%00b", "x" * 5000, "%28no%20owner%29", "%FF", "-1", "9" * 30):
        status = admin_client.get(f"/codeowners/{owner}/").status_code
        if status not in (200, 404):
            failures.append(f"/codeowners/{owner[:20]}/: {status}")
    assert failures == []
