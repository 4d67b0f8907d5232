"""Read replicas (DATABASE_REPLICA_URL, optional): the dashboard's and the API's reads go to
the replica; everything else goes to the primary.

- Writes always go to the primary, and so do all reads outside a dashboard or API GET:
  the receiver, the projector, triage, the admin, commands, and every read of the
  session, user, token and throttle tables (so logging in works whatever the replica's lag).
- Right after a user's own write (any POST, PATCH... through the app), their reads stay on
  the primary for FLAKYBOARD_REPLICA_STICKY_SECONDS (a cookie), so they see their own
  triage at once although the replica lags a little behind. The same cookie keeps them off
  the shared pages (dashboard/shared_pages.py), which are set with or without a replica.

The choice is made per request by ReplicaReadsMiddleware and read by the router through a
context variable: no thread-local state leaks between requests."""

from __future__ import annotations

import contextvars
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

REPLICA = "replica"
STICKY_COOKIE = "flakyboard_primary"
# The apps whose tables a dashboard or API read may take from the replica: the projected
# data and the notifications' (never auth, sessions, tokens, throttles, axes).
REPLICATED_APPS = frozenset({"events", "notifications"})
READ_NAMESPACES = frozenset({"dashboard", "api"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_from_replica: contextvars.ContextVar[bool] = contextvars.ContextVar("reads_from_replica", default=False)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def wants_fresh_reads(request: HttpRequest) -> bool:
    """Whether this user wrote in the last FLAKYBOARD_REPLICA_STICKY_SECONDS: their reads
    then come from the primary, and not from the pages shared between readers either
    (dashboard/shared_pages.py), so that they see their own triage at once."""
    return bool(request.COOKIES.get(STICKY_COOKIE))


class ReplicaRouter:
    def db_for_read(self, model, **hints) -> str | None:
        if _from_replica.get() and model._meta.app_label in REPLICATED_APPS and replica_configured():
            return REPLICA
        return None  # the primary ("default")

    def db_for_write(self, model, **hints) -> str | None:
        return None

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        return True  # one database, two copies of it

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool | None:
        return db != REPLICA  # the replica follows the primary; never migrated itself


class ReplicaReadsMiddleware:
    """Chooses the replica for a dashboard or API read by someone who has not written in
    the last FLAKYBOARD_REPLICA_STICKY_SECONDS; after a write, sets that cookie."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _from_replica.set(False)
        try:
            response = self.get_response(request)
        finally:
            _from_replica.reset(token)
        if (
            replica_configured() or settings.FLAKYBOARD_SHARED_PAGE_SECONDS > 0
        ) and request.method not in SAFE_METHODS:
            response.set_cookie(
                STICKY_COOKIE,
                "1",
                max_age=settings.FLAKYBOARD_REPLICA_STICKY_SECONDS,
                httponly=True,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> None:
        match = request.resolver_match
        if (
            replica_configured()
            and request.method in SAFE_METHODS
            and not wants_fresh_reads(request)
            and match is not None
            and match.namespace in READ_NAMESPACES
        ):
            _from_replica.set(True)
