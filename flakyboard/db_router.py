"""Read replicas (DATABASE_REPLICA_URL, optional): the dashboard's and the API's reads go to
the replica; everything else goes to the primary.

- Writes always go to the primary, and so do all reads outside a dashboard or API GET:
  the receiver, the projector, triage, the admin, commands, and every read of the
  session, user, token and throttle tables (so logging in works whatever the replica's lag).
- Right after a user's own write (any POST, PATCH... through the app), their reads stay on
  the primary for FLAKYBOARD_REPLICA_STICKY_SECONDS (a cookie), so they see their own
  triage at once although the replica lags a little behind. The same cookie keeps them off
  the shared pages (dashboard/shared_pages.py), which are set with or without a replica.

- A replica that fails to answer (down, restarting, stalled past the statement bound of
  flakyboard/db.py) costs no page: the read is run again on the primary, and this
  process reads from the primary for FLAKYBOARD_REPLICA_RETRY_SECONDS; then one read
  probes the replica (SELECT 1) while the others stay on the primary (logged, and
  counted in flakyboard_replica_failures). It never trips the primary's breaker: the
  receiver does not read the replica. API throttles count a read run again once.

The choice is made per request by ReplicaReadsMiddleware and read by the router through a
context variable: no thread-local state leaks between requests."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse

from flakyboard import observability
from flakyboard.db import (
    WAIT_GRACE_SECONDS,
    Breaker,
    DatabaseStalled,
    database_unreachable,
    statement_timed_out,
    unavailable_response,
)

logger = logging.getLogger(__name__)

REPLICA = "replica"
STICKY_COOKIE = "flakyboard_primary"
# The apps whose tables a dashboard or API read may take from the replica: the projected
# data and the notifications' (never auth, sessions, tokens, throttles, axes).
REPLICATED_APPS = frozenset({"events", "notifications"})
READ_NAMESPACES = frozenset({"dashboard", "api"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_from_replica: contextvars.ContextVar[bool] = contextvars.ContextVar("reads_from_replica", default=False)
# The view a replica read serves (view, args, kwargs), to run it again on the primary.
_replica_view: contextvars.ContextVar[tuple[Callable[..., Any], tuple, dict] | None] = contextvars.ContextVar(
    "replica_view", default=None
)
# Set on a request whose view is run again on the primary: its throttles were counted.
RERUN_ATTRIBUTE = "flakyboard_replica_rerun"


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def wants_fresh_reads(request: HttpRequest) -> bool:
    """Whether this user wrote in the last FLAKYBOARD_REPLICA_STICKY_SECONDS: their reads
    then come from the primary, and not from the pages shared between readers either
    (dashboard/shared_pages.py), so that they see their own triage at once."""
    return bool(request.COOKIES.get(STICKY_COOKIE))


def _probe_seconds() -> float:
    """The longest a probe of a down replica may take: a connect timeout, or a reused
    connection's wait bound (flakyboard/db.py), with a margin."""
    connect = settings.DATABASES.get(REPLICA, {}).get("OPTIONS", {}).get("connect_timeout", 2)
    return max(float(connect), settings.DATABASE_STATEMENT_TIMEOUT + WAIT_GRACE_SECONDS) + 1.0


# Whether this process reads from the replica: not for FLAKYBOARD_REPLICA_RETRY_SECONDS
# after it failed to answer; then one read probes it while the others stay on the primary
# for as long as that probe may wait, until a probe finds it answering.
REPLICA_HEALTH = Breaker(
    open_seconds=lambda: settings.FLAKYBOARD_REPLICA_RETRY_SECONDS, probe_seconds=_probe_seconds
)


def replica_failed(exc: BaseException) -> None:
    REPLICA_HEALTH.trip()
    observability.REPLICA_FAILURES.inc()
    logger.warning(
        "the read replica failed (%s): reads go to the primary for %g s",
        exc,
        settings.FLAKYBOARD_REPLICA_RETRY_SECONDS,
    )


def _replica_answers() -> bool:
    """The probe of a replica that failed before: one statement (a page served from the
    shared copy would not touch it). It costs this request the wait if it still fails."""
    try:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute("SELECT 1")
    except (DatabaseError, InterfaceError) as exc:  # refused, closed, or stalled (flakyboard/db.py)
        replica_failed(exc)
        return False
    REPLICA_HEALTH.close()
    return True


def failed_on_replica(exc: BaseException) -> bool:
    """Whether `exc` is the replica failing to answer: a stall (flakyboard/db.py), or a
    connection error on the replica's connection (refused, closed, a recovery conflict).
    Not a statement the replica cancelled at the statement timeout: it answers."""
    if isinstance(exc, DatabaseStalled):
        return exc.alias == REPLICA
    if not isinstance(exc, OperationalError | InterfaceError) or statement_timed_out(exc):
        return False
    # Django marks the connection whose call raised it.
    return connections[REPLICA].errors_occurred


def recheck_replica_choice() -> None:
    """For work started after the request that chose the replica (the shared pages'
    refresher thread carries its context): the primary if the replica failed since.
    Decided once, before the work, so that one page reads one database."""
    if _from_replica.get() and REPLICA_HEALTH.tripped:
        _from_replica.set(False)


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
        view_token = _replica_view.set(None)
        try:
            response = self.get_response(request)
        finally:
            _replica_view.reset(view_token)
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
            usable, probing = REPLICA_HEALTH.admit()
            if not usable or (probing and not _replica_answers()):
                return
            replica = connections[REPLICA]
            if replica.connection is None:
                # Left set by an earlier request's failed connect (close_old_connections
                # only clears it on an open connection): not this request's error.
                replica.errors_occurred = False
            _from_replica.set(True)
            _replica_view.set((view_func, view_args, view_kwargs))

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A read the replica failed to answer: noted (this process reads from the primary
        for a while) and the view run again on the primary, so the reader gets the page.
        A GET view only reads, so running it again is safe."""
        view = _replica_view.get()
        if view is None or not _from_replica.get() or not failed_on_replica(exception):
            return None
        replica_failed(exception)
        _from_replica.set(False)
        view_func, view_args, view_kwargs = view
        setattr(request, RERUN_ATTRIBUTE, True)  # api/throttling.py: counted once
        try:
            response = view_func(request, *view_args, **view_kwargs)
            render = getattr(response, "render", None)  # a TemplateResponse (DRF's Response)
            return render() if callable(render) else response
        except Exception as retry_error:
            if database_unreachable(retry_error):  # the primary too: as any page would
                return unavailable_response()
            raise
