"""Pages shared between readers: the rendered main content of the aggregate pages (the
overview, tests, codeowners, monitors, investigations, quarantine, digest), kept for
FLAKYBOARD_SHARED_PAGE_SECONDS and served to every reader of the same page, filters and
audience.

Why: those pages aggregate all of history. Computing one takes tens of milliseconds of SQL
and as much of Python (figures, charts, a table's template), so under many readers, or
readers beside a flood of deliveries, the server spent its cores computing the same page
again for each of them. Shared, a page is computed about once per interval per process.

What a reader may see: figures at most FLAKYBOARD_SHARED_PAGE_SECONDS old (10 s by
default), on top of the projection's own delay (deliveries are applied in batches). What
they never see:
- another audience's page: the key holds whether the reader is signed in and is staff,
  the only things of the user that the content shows (the shell around it, with the
  user's name and the log-out form's CSRF token, is rendered for each request);
- a page older than their own write: for FLAKYBOARD_REPLICA_STICKY_SECONDS after a write
  (the fresh-reads cookie of flakyboard/db_router.py) they get a freshly computed page,
  which then replaces the shared one. The interval is capped at the sticky one (settings),
  so when the cookie ends, every shared copy is younger than the write.

The content is a template's `content` partial (`{% partialdef content inline %}` inside its
`content` block); `_base.html` shows `shared_content` in its place when it is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from flakyboard.db_router import wants_fresh_reads

KEY_PREFIX = "shared-page:v1:"


def render_shared(
    request: HttpRequest,
    template_name: str,
    content_context: Callable[[], dict[str, Any]],
    shell_context: dict[str, Any],
) -> HttpResponse:
    """The page `template_name`, its content taken from the shared copy when there is one.

    `content_context` computes the content's context (called only when the content is
    computed); `shell_context` is what the page around it needs (its scope, its title)."""
    max_age = settings.FLAKYBOARD_SHARED_PAGE_SECONDS
    if max_age <= 0:
        return render(request, template_name, content_context())
    cache = caches[settings.SHARED_PAGE_CACHE]
    key = shared_key(request, template_name)
    content = None if wants_fresh_reads(request) else cache.get(key)
    if content is None:
        content = render_to_string(f"{template_name}#content", content_context(), request)
        cache.set(key, content, max_age)
    # Our own rendering, already escaped: safe to show as it is whatever the cache returns.
    return render(request, template_name, {**shell_context, "shared_content": mark_safe(content)})  # noqa: S308


def shared_key(request: HttpRequest, template_name: str) -> str:
    """One entry per template, path with query string, and audience (signed in, staff)."""
    user = request.user
    audience = f"{int(user.is_authenticated)}{int(user.is_staff)}"
    page = f"{template_name}\n{request.get_full_path()}\n{audience}"
    # Hashed: a query string may be long or hold characters a cache key may not (memcached).
    return KEY_PREFIX + hashlib.sha256(page.encode()).hexdigest()
