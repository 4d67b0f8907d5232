"""Visit every page, admin view, CSV export and API endpoint for what is in the database.

    from tests.crawl import crawl_everything
    visited = crawl_everything(admin_client)   # a logged-in superuser's django.test.Client

Each URL must answer 200 (a streamed body is read to the end, so a CSV row that fails
fails here). Failures are collected and reported together in one AssertionError; the
URLs visited are returned so that a caller can assert coverage.

URLs come from the URL resolver (every named GET route of the `dashboard` and `api`
namespaces, its parameters filled from the database by the parameter's name), the admin
registry (every model's change list, change and history views, and its export actions)
and the DRF router (each viewset's model gives the detail ids). A route with a parameter
this module cannot fill fails the crawl, so a new page cannot be skipped silently: teach
`_values_for` its parameter.

Then the links the pages themselves contain (href, hx-get, and the URLs inside chart
data) are followed, a bounded number per route: this finds links that do not resolve
or lead to an error (an owner's page, a filter value in a query string). Pages with
htmx targets are also fetched as htmx swaps of each target.

The number of objects per model is bounded (`per_model`), so a crawl of a small test
database takes seconds whatever else is in it.
"""

from __future__ import annotations

import json
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable
from html import unescape
from urllib.parse import unquote, urlencode, urljoin, urlsplit

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.db.models import Count
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.exceptions import NoReverseMatch, Resolver404

from dashboard.selectors import common
from events import metrics
from events.models import Delivery, Investigation, Owner, Repository, TestCase

PERIODS = sorted(metrics.PERIODS, key=lambda p: p != "all")  # all (the most data) first, 7d, 30d, 90d
CRAWLED_NAMESPACES = ("dashboard", "api")
# Named routes that are not pages to GET (the triage and verdict GETs are their partials):
# the API's verdict write takes only PUT/PATCH.
SKIPPED_ROUTES: frozenset[str] = frozenset({"api:investigation-verdict"})
# Links not followed: they change state, or leave what this crawl checks.
NOT_FOLLOWED = re.compile(
    r"^admin:(logout|password_change|.*_(add|delete)|view_on_site|jsi18n)$|^(logout|login)$"
)
FOLLOWED_PER_ROUTE = 4  # links followed per route name (sort links, filters, pages...)
ADMIN_PER_MODEL = 4  # objects per model whose admin change view is visited

Check = Callable[[str, object], None]


def crawl_everything(
    client: Client, *, per_model: int = 100, follow_links: bool = True, check: Check | None = None
) -> list[str]:
    """GET every page for the objects in the database (see the module docstring).

    `client`: logged in as a superuser (admin views need every view permission).
    `per_model`: objects per model whose dashboard and API pages are visited (tests,
    owners, deliveries...); the admin's change views, a handful per model.
    `follow_links`: also follow the links found on the pages (a bounded number per route).
    `check(url, response)`: an extra assertion on every 200 response.
    Returns the URLs visited, in order (POSTs of export actions as "POST <url> <action>").
    """
    crawler = _Crawler(client, per_model=per_model, check=check)
    crawler.require_superuser()
    crawler.routes()
    crawler.admin()
    if follow_links:
        crawler.follow()
    if crawler.failures:
        shown = "\n".join(crawler.failures[:40])
        more = len(crawler.failures) - 40
        raise AssertionError(
            f"{len(crawler.failures)} of {len(crawler.visited)} URLs failed:\n{shown}"
            + (f"\n... and {more} more" if more > 0 else "")
        )
    return crawler.visited


class _Crawler:
    def __init__(self, client: Client, *, per_model: int, check: Check | None):
        self.client = client
        self.per_model = per_model
        self.check = check
        self.visited: list[str] = []
        self.seen: set[str] = set()
        self.failures: list[str] = []
        # (url, the page it was found on): links with escaped characters, and the others.
        self.odd_links: deque[tuple[str, str]] = deque()
        self.links: deque[tuple[str, str]] = deque()
        self.followed = Counter()
        self.swapped: set[tuple[str, str]] = set()  # (path, htmx target) fetched as a swap

    # ---------------------------------------------------------------- fetching

    def require_superuser(self) -> None:
        user_id = self.client.session.get("_auth_user_id")
        user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
        if user is None or not (user.is_staff and user.is_superuser):
            raise AssertionError("crawl_everything needs a client logged in as a superuser (admin_client)")

    def get(
        self, url: str, *, headers: dict | None = None, label: str | None = None, swaps: bool = True
    ) -> None:
        label = label or url
        if label in self.seen:
            return
        self.seen.add(label)
        self.visited.append(label)
        try:
            response = self.client.get(url, headers=headers or {})
            body = _read(response)
        except Exception as error:  # noqa: BLE001 (any error is a failure to report)
            self.failures.append(f"{label}: raised {type(error).__name__}: {error}"[:2000])
            return
        if response.status_code != 200:
            self.failures.append(f"{label}: answered {response.status_code} {body[:300]!r}")
            return
        self._inspect(url, response, body, swaps=swaps and not headers)

    def post_action(self, changelist: str, action: str, pks: list) -> None:
        label = f"POST {changelist} {action}"
        self.visited.append(label)
        data = {"action": action, "_selected_action": [str(pk) for pk in pks], "index": 0}
        try:
            response = self.client.post(changelist, data)
            body = _read(response)
        except Exception as error:  # noqa: BLE001
            self.failures.append(f"{label}: raised {type(error).__name__}: {error}"[:2000])
            return
        if response.status_code != 200:
            self.failures.append(f"{label}: answered {response.status_code} {body[:300]!r}")
        else:
            self._run_check(label, response)

    def _run_check(self, url: str, response) -> None:
        if self.check:
            try:
                self.check(url, response)
            except AssertionError as error:
                self.failures.append(f"{url}: {error}"[:2000])

    def _inspect(self, url: str, response, body: bytes, *, swaps: bool) -> None:
        self._run_check(url, response)
        content_type = response.get("Content-Type", "")
        if content_type.startswith("application/json"):
            try:
                json.loads(body)
            except ValueError as error:
                self.failures.append(f"{url}: invalid JSON: {error}")
            return
        if not content_type.startswith("text/html"):
            return
        page = _Page(body.decode())
        for link in page.links:
            # Links that carry escaped characters are followed first: they hold the odd
            # values (an owner, a variant, a monitor type in a filter) that the cap could cut.
            (self.odd_links if "%" in link else self.links).append((urljoin(url, link), url))
        if swaps:
            # Each htmx target of the page, fetched as the swap htmx would ask for (once
            # per page and target: the first URL of a page has period=all).
            for target in sorted(page.targets):
                if (urlsplit(url).path, target) in self.swapped:
                    continue
                self.swapped.add((urlsplit(url).path, target))
                self.get(
                    url,
                    headers={"HX-Request": "true", "HX-Target": target},
                    label=f"{url} [htmx target={target}]",
                )

    # ---------------------------------------------------------------- URL resolver and router

    def routes(self) -> None:
        for name, params in _named_routes():
            if name in SKIPPED_ROUTES:
                continue
            if not params:
                for query in self._queries_for(name):
                    self.get(reverse(name) + query)
                continue
            for kwargs in self._values_for(name, params):
                try:
                    url = reverse(name, kwargs=kwargs)
                except NoReverseMatch as error:
                    self.failures.append(f"{name} {kwargs!r}: no URL: {error}")
                    continue
                self.get(url)

    def _queries_for(self, name: str) -> list[str]:
        """Each period, with and without a repository filter (the one with the most
        tests), where the route has them."""
        scoped = name.startswith("dashboard:") or name.startswith("api:stats-")
        if not scoped:
            return [""]
        biggest = (
            Repository.objects.annotate(n=Count("test_cases"))
            .order_by("-n", "pk")
            .values_list("pk", flat=True)
        )
        repositories = [None, *biggest[:1]]
        return [
            "?" + urlencode({"period": period, **({"repository": repo} if repo else {})})
            for period in PERIODS
            for repo in repositories
        ]

    def _values_for(self, name: str, params: tuple[str, ...]) -> Iterable[dict]:
        """Parameter values for a route, from the database, by the parameter's name."""
        n = self.per_model
        if params in (("test_id",), ("test_case_id",)):
            for pk in TestCase.objects.order_by("pk").values_list("pk", flat=True)[:n]:
                yield {params[0]: pk}
        elif params == ("owner",):
            # By id, as the pages link them; one by name (older links name the owner).
            yield {"owner": common.NO_OWNER_PARAM}
            for i, (pk, key) in enumerate(Owner.objects.order_by("key").values_list("pk", "key")[:n]):
                yield {"owner": pk}
                if i == 0:
                    yield {"owner": key}
        elif params == ("test_id", "investigation_id"):
            for test_id, pk in Investigation.objects.order_by("pk").values_list("test_case_id", "pk")[:n]:
                yield {"test_id": test_id, "investigation_id": pk}
        elif params == ("delivery_id",):
            for pk in Delivery.objects.order_by("pk").values_list("pk", flat=True)[:n]:
                yield {"delivery_id": pk}
        elif name.startswith("api:") and len(params) == 1:
            viewset = _viewset_of(name)
            if viewset is None:
                self.failures.append(f"{name}: no router viewset gives values for {params}")
                return
            model = viewset.queryset.model
            field = getattr(viewset, "lookup_field", "pk")
            for value in model._default_manager.order_by("pk").values_list(field, flat=True)[:n]:
                yield {params[0]: value}
        else:
            self.failures.append(f"{name}: the crawler does not know how to fill {params} (tests/crawl.py)")

    # ---------------------------------------------------------------- admin registry

    def admin(self) -> None:
        self.get(reverse("admin:index"))
        for app_label in sorted({model._meta.app_label for model in admin.site._registry}):
            self.get(reverse("admin:app_list", args=[app_label]))
        for model, model_admin in admin.site._registry.items():
            opts = model._meta
            base = f"admin:{opts.app_label}_{opts.model_name}"
            changelist = reverse(f"{base}_changelist")
            self.get(changelist)
            pks = list(model._default_manager.order_by("pk").values_list("pk", flat=True)[:ADMIN_PER_MODEL])
            for pk in pks:
                self.get(reverse(f"{base}_change", args=[quote(pk)]))
            # Export actions (CSV): POSTed like the change list's action form does.
            for action in model_admin.actions or ():
                name = action if isinstance(action, str) else action.__name__
                if name.startswith("export") and pks:
                    self.post_action(changelist, name, pks)

    # ---------------------------------------------------------------- links found on pages

    def follow(self) -> None:
        while self.odd_links or self.links:
            url, found_on = (self.odd_links or self.links).popleft()
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or not parts.path.startswith("/"):
                continue  # external (already checked to be http(s) by the pages) or not a path
            if parts.path.startswith("/static/"):
                continue
            try:
                match = resolve(unquote(parts.path))
            except Resolver404:
                self.failures.append(f"{url}: linked from {found_on}, resolves to no page")
                continue
            name = match.view_name
            if NOT_FOLLOWED.match(name or ""):
                continue
            if url.split("#")[0] in self.seen:
                continue
            if self.followed[name] >= FOLLOWED_PER_ROUTE:
                continue
            self.followed[name] += 1
            self.get(url.split("#")[0], swaps=False)


def _read(response) -> bytes:
    if isinstance(response, StreamingHttpResponse):
        return b"".join(response.streaming_content)  # errors in a streamed body happen here
    return response.content


def _named_routes() -> list[tuple[str, tuple[str, ...]]]:
    """(namespaced name, parameter names) of every named route in CRAWLED_NAMESPACES."""
    found: list[tuple[str, tuple[str, ...]]] = []

    def walk(patterns, namespace: str | None, params: tuple[str, ...]) -> None:
        for entry in patterns:
            own = _params_of(entry.pattern)
            if isinstance(entry, URLResolver):
                child = entry.namespace or None
                walk(
                    entry.url_patterns,
                    f"{namespace}:{child}" if namespace and child else (child or namespace),
                    params + own,
                )
            elif isinstance(entry, URLPattern) and entry.name and namespace in CRAWLED_NAMESPACES:
                found.append((f"{namespace}:{entry.name}", params + own))

    walk(get_resolver().url_patterns, None, ())
    return found


def _params_of(pattern) -> tuple[str, ...]:
    converters = getattr(pattern, "converters", None)
    if converters:
        return tuple(converters)
    regex = getattr(pattern, "_regex", None)
    if isinstance(regex, str):
        return tuple(re.compile(regex).groupindex)
    return ()


def _viewset_of(name: str):
    from api.urls import router

    route = name.removeprefix("api:")
    for _prefix, viewset, basename in sorted(router.registry, key=lambda r: -len(r[2])):
        if route.startswith(f"{basename}-"):
            return viewset
    return None


# Django's templates and format_html quote every attribute with double quotes. Regular
# expressions, not an HTML parser: a page may be megabytes (a raw delivery body).
_ATTRIBUTE = re.compile(r'\s(href|hx-get|hx-target)="([^"]*)"')
_DATA_ISLAND = re.compile(r'<script id="[^"]*" type="application/json">(.*?)</script>', re.DOTALL)


class _Page:
    """The links of an HTML page (href, hx-get, URLs in JSON data islands) and the
    elements htmx swaps into (hx-target)."""

    def __init__(self, html: str):
        self.links: list[str] = []
        self.targets: set[str] = set()
        for attribute, value in _ATTRIBUTE.findall(html):
            value = unescape(value)
            if attribute == "hx-target":
                if value.startswith("#"):
                    self.targets.add(value[1:])
            elif value:
                self.links.append(value)
        for data in _DATA_ISLAND.findall(html):
            self.links.extend(_paths_in(json.loads(data)))


def _paths_in(value) -> Iterable[str]:
    """Strings in chart data that are local URLs (a point's link, in customdata)."""
    if isinstance(value, str):
        if value.startswith("/") and not value.startswith("//"):
            yield value
    elif isinstance(value, list):
        for item in value:
            yield from _paths_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _paths_in(item)
