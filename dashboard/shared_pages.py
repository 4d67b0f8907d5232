"""Pages shared between readers: the rendered main content of the aggregate pages (the
overview, tests, codeowners, monitors, investigations, quarantine, digest; a test's page
for readers who cannot triage, as the triagers' holds their forms), kept for
FLAKYBOARD_SHARED_PAGE_SECONDS and served to every reader of the same page, filters and
audience.

Why: those pages aggregate all of history. Computing one takes tens of milliseconds of SQL
and as much of Python (figures, charts, a table's template), so under many readers, or
readers beside a flood of deliveries, the server spent its cores computing the same page
again for each of them. Shared, a page is computed about once per interval per process.

Computing never makes a reader wait once a page has been computed: a copy older than
FLAKYBOARD_SHARED_PAGE_SECONDS is served once more while it is computed again in the
background (one thread per process, one computation per page at a time: stale while
revalidate, as RFC 5861 names it for HTTP caches). A copy twice that age is dropped, and
the next reader computes it. So a reader may see figures up to twice
FLAKYBOARD_SHARED_PAGE_SECONDS old (20 s by default; usually less than the interval) on top
of the projection's own delay (deliveries are applied in batches). What they never see:
- another audience's page: the key holds whether the reader is signed in and is staff,
  the only things of the user that the content shows (the shell around it, with the
  user's name and the log-out form's CSRF token, is rendered for each request);
- a page older than a triage write (a test's triage, a verdict; from the dashboard, the
  API or the admin): events.triage announces each one once committed, and every copy
  made before it is dropped (the key's generation);
- a page older than their own write of any kind: for FLAKYBOARD_REPLICA_STICKY_SECONDS
  after a write (the fresh-reads cookie of flakyboard/db_router.py) every page is
  computed for them. Such a page is not stored: the cookie is the client's to send, and
  it must not let anyone write the shared copies. Twice the interval is capped at the
  sticky one (settings), so when the cookie ends, every shared copy is younger than the
  write (give or take a replica's lag);
- a page computed for another address: the host and scheme the request came by are in
  the key (the empty installation's card shows the webhook URL built from them).

Only URLs whose query parameters the dashboard's forms know are shared (any other is
computed for its reader, as before): a reader cannot fill the cache with made-up
parameters. A cache that fails (its table missing before `migrate`, the database slow)
costs the page its sharing, not its answer: the page is computed, and the error logged.

The content is a template's `content` partial (`{% partialdef content inline %}` inside its
`content` block); `_base.html` shows `shared_content` in its place when it is given.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from functools import cache
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.db import close_old_connections, connection, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from flakyboard.db_router import recheck_replica_choice, wants_fresh_reads

logger = logging.getLogger(__name__)

KEY_PREFIX = "shared-page:v4:"
GENERATION_KEY = KEY_PREFIX + "generation"

# The background computations: one thread per process, so that they take one core at
# most whatever the number of readers; each page at most once at a time.
_refresher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shared-pages")
_refreshing: set[str] = set()
_refreshing_lock = threading.Lock()


def render_shared(
    request: HttpRequest,
    template_name: str,
    content_context: Callable[[], dict[str, Any]],
    shell_context: dict[str, Any],
) -> HttpResponse:
    """The page `template_name`, its content taken from the shared copy when there is one.

    `content_context` computes the content's context (called only when the content is
    computed); `shell_context` is what the page around it needs (its scope, its title)."""
    fresh_for = settings.FLAKYBOARD_SHARED_PAGE_SECONDS
    if fresh_for <= 0 or wants_fresh_reads(request) or not _shareable(request):
        return render(request, template_name, content_context())
    key = shared_key(request, template_name)
    found = _cache_call("read", lambda: _cache().get_many([key, GENERATION_KEY]))
    if found is None:  # the cache failed: computed for this reader alone
        return render(request, template_name, content_context())
    generation = found.get(GENERATION_KEY) or ""

    def compute() -> str:
        content = render_to_string(f"{template_name}#content", content_context(), request)
        _cache_call("write", lambda: _cache().set(key, (time.time(), generation, content), 2 * fresh_for))
        return content

    entry = found.get(key)
    age = time.time() - entry[0] if entry else None
    # The cache drops an entry at twice the interval too, but some (the database's) only
    # to the second: the age decides. A copy of an earlier generation is a copy from
    # before a triage write.
    if entry is None or age is None or age >= 2 * fresh_for or entry[1] != generation:
        content = compute()
    else:
        content = entry[2]
        if age >= fresh_for:
            refresh_in_background(key, compute)
    # Our own rendering, already escaped: safe to show as it is whatever the cache returns.
    return render(request, template_name, {**shell_context, "shared_content": mark_safe(content)})  # noqa: S308


def forget_shared_pages(**kwargs: object) -> None:
    """Drop every shared copy (a new generation): events.triage.triage_written's receiver."""
    _cache_call("generation", lambda: _cache().set(GENERATION_KEY, uuid.uuid4().hex, None))


def refresh_in_background(key: str, compute: Callable[[], object]) -> None:
    """Run `compute` on the refresher thread unless this page is already being computed,
    here or (with a cache that every process shares) by another process."""
    with _refreshing_lock:
        if key in _refreshing:
            return
        _refreshing.add(key)
    claim = f"{key}:computing"
    submitted = False
    try:
        # add() stores only when absent: one process wins; the claim lapses with the interval.
        if not _cache_call("claim", lambda: _cache().add(claim, 1, settings.FLAKYBOARD_SHARED_PAGE_SECONDS)):
            return

        def run() -> None:
            try:
                recheck_replica_choice()
                compute()
            except Exception:
                # The stored copy stays until it expires; then a reader computes the page
                # and sees the error as a request would.
                logger.exception("shared page: computing it in the background failed")
            finally:
                with _refreshing_lock:
                    _refreshing.discard(key)
                _cache_call("claim", lambda: _cache().delete(claim))

        # The request's context variables go along (the replica router's choice of database).
        _submit(contextvars.copy_context().run, run)
        submitted = True
    finally:
        if not submitted:
            with _refreshing_lock:
                _refreshing.discard(key)


def _submit(fn: Callable[..., object], *args: object) -> None:
    """Run `fn(*args)` on the refresher thread, its database connection looked after as
    around a request (one past its age or broken is replaced)."""

    def on_thread() -> None:
        close_old_connections()
        try:
            fn(*args)
        finally:
            close_old_connections()

    _refresher.submit(on_thread)


def _cache() -> Any:
    return caches[settings.SHARED_PAGE_CACHE]


def _cache_call(what: str, call: Callable[[], Any]) -> Any:
    """A call to the cache, or None when it fails: sharing is an optimisation, and a page
    must not fail because its copy could not be read or stored."""
    try:
        # In a caller's transaction, a failed statement of the database's cache must not
        # abort it (PostgreSQL): a savepoint. Outside one (requests), no extra statement.
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            return call()
    except Exception:  # noqa: BLE001 - any backend's error (a database's, Redis's)
        logger.warning("shared pages: the cache failed (%s); the page is computed", what, exc_info=True)
        return None


@cache
def known_parameters() -> frozenset[str]:
    """The query parameters of the shared pages: their forms' fields, the page number,
    the digest's owner."""
    from . import forms

    names = {"page", "owner"}
    for form in (
        forms.ScopeForm,
        forms.TestFilterForm,
        forms.OwnerTestsForm,
        forms.InvestigationFilterForm,
        forms.QuarantineFilterForm,
    ):
        names |= set(form.base_fields)
    return frozenset(names)


def _shareable(request: HttpRequest) -> bool:
    return set(request.GET).issubset(known_parameters())


def shared_key(request: HttpRequest, template_name: str) -> str:
    """One entry per database, address, template, path with query string, and audience
    (signed in, staff)."""
    user = request.user
    audience = f"{int(user.is_authenticated)}{int(user.is_staff)}"
    # The database too: a cache shared by two installations (one Redis) keeps them apart.
    database = settings.DATABASES["default"]
    where = f"{database.get('HOST')}:{database.get('PORT')}/{database['NAME']}"
    address = f"{request.scheme}://{request.get_host()}"
    page = f"{where}\n{address}\n{template_name}\n{request.get_full_path()}\n{audience}"
    # Hashed: a query string may be long or hold characters a cache key may not (memcached).
    return KEY_PREFIX + hashlib.sha256(page.encode()).hexdigest()
