"""Bounded waits on PostgreSQL for the web server: a stalled database gives 503 in seconds.

A database that is paused, overloaded to a standstill or cut off behind a silent network
does not refuse anything: the kernel still accepts TCP connections and acknowledges
data (and keepalives), so without a bound every request waits as long as the stall
lasts, while Svix counts the delivery as failed after 15 s anyway. Three bounds, from
settings (flakyboard/settings.py, .env.example):

- DATABASE_CONNECT_TIMEOUT (every process): libpq's connect_timeout, which psycopg
  enforces over the whole connection start-up (whole seconds, at least 2, per address).
- DATABASE_STATEMENT_TIMEOUT (web server processes): PostgreSQL's statement_timeout on
  their connections. A live server cancels a slower statement itself, releasing its
  locks; but a stopped server cannot, and a connection reused from an earlier request
  (CONN_MAX_AGE) is not bounded by the connect timeout. Hence also:
- a client-side bound, the statement timeout plus WAIT_GRACE_SECONDS, on every wait for
  the server's answer (statements, commits, Django's health check of a reused
  connection): psycopg's own wait deadline. When it expires the connection is dropped
  and DatabaseStalled (an OperationalError) is raised: the receiver and /healthz answer
  503. Raising it from the health check, instead of reporting the connection unusable,
  keeps Django from then waiting for a new connection too (4 s instead of 6 with the
  defaults).

Only web server processes get the last two (flakyboard/wsgi.py calls
`bound_database_waits`): management commands (the projector, rebuild_projections,
migrate) run long statements on purpose and are not answering anyone.

The bound counts from when a request's thread asks the database. Requests queued behind
busy threads would add their wait to it (24 requests on 8 threads: 8-10 s), so once a
process has seen the database stall, `StalledDatabaseMiddleware` answers 503 at once for
a few seconds, then lets one request probe the database while the others keep getting
503; the first request that finds the database answering closes it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

# Left to a live server to cancel a slow statement itself (and release its locks) before
# the client gives up on it.
WAIT_GRACE_SECONDS = 1.0

_bounds: tuple[float, float | None] | None = None  # (statement timeout, wait bound), seconds


class DatabaseStalled(OperationalError):
    """The database did not answer within the bound; the connection was dropped. `alias`:
    which of the process's databases (the primary, "default", or the read replica)."""

    def __init__(self, message: str, alias: str = DEFAULT_DB_ALIAS) -> None:
        super().__init__(message)
        self.alias = alias


def bound_database_waits() -> None:
    """Bound every database wait of this process (a web server: flakyboard/wsgi.py)."""
    global _bounds
    timeout = settings.DATABASE_STATEMENT_TIMEOUT
    # PostgreSQL only: SQLite is a file, which cannot stall this way (its "database is
    # locked" after its own timeout is not an outage, and must not trip the breaker).
    postgresql = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    _bounds = (timeout, timeout + WAIT_GRACE_SECONDS) if timeout > 0 and postgresql else None
    if _bounds and not _psycopg_wait_has_deadline():
        logger.warning("psycopg older than 3.3: database waits are not bounded on the client side")
        _bounds = (timeout, None)
    connection_created.connect(_bound_connection, dispatch_uid="flakyboard.db.bound_connection")


def _bound_connection(sender, connection, **kwargs) -> None:
    """connection_created: give a new PostgreSQL connection the statement timeout and
    bound its waits."""
    if connection.vendor != "postgresql" or _bounds is None:
        return
    statement_timeout, bound = _bounds
    raw = connection.connection
    raw.execute("SELECT set_config('statement_timeout', %s, false)", [f"{round(statement_timeout * 1000)}ms"])
    if bound is None:
        return
    wait = raw.wait

    def bounded_wait(gen, interval=0.1, timeout=None):
        if timeout is not None:  # psycopg's own bounded waits (cancel, notifies)
            return wait(gen, interval, timeout)
        started = time.monotonic()
        try:
            return wait(gen, interval, bound)
        except Exception:
            if time.monotonic() - started < bound:
                raise  # an error the server sent, or a connection already broken
            # No answer within the bound (psycopg's wait deadline): the connection is in
            # the middle of an exchange, unusable; drop it without waiting any longer.
            raw.pgconn.finish()
            logger.error(
                "the database %r did not answer within %g s: connection dropped", connection.alias, bound
            )
            if connection.alias == DEFAULT_DB_ALIAS:
                BREAKER.trip()
            # A stalled read replica is not an outage: its reads go to the primary meanwhile
            # (flakyboard.db_router.ReplicaReadsMiddleware).
            raise DatabaseStalled(
                f"the database did not answer within {bound:g} s", connection.alias
            ) from None

    # Every network wait of a psycopg connection goes through Connection.wait.
    raw.wait = bounded_wait


def _psycopg_wait_has_deadline() -> bool:
    """psycopg >= 3.3: Connection.wait takes a timeout (its own wait deadline)."""
    import inspect

    import psycopg

    return "timeout" in inspect.signature(psycopg.Connection.wait).parameters


# After a stall: answer 503 at once for this long, then let one request probe.
OPEN_SECONDS = 2.0


class Breaker:
    """Whether this process saw a database fail recently (thread-safe): after a trip,
    nothing is admitted for `open_seconds()`; then one probe at a time, the others held
    off for `probe_seconds()` (as long as the probe may wait), until one closes it. The
    primary's (BREAKER, below) and the read replica's (flakyboard/db_router.py)."""

    def __init__(self, *, open_seconds: Callable[[], float], probe_seconds: Callable[[], float]) -> None:
        self._open_seconds = open_seconds
        self._probe_seconds = probe_seconds
        self._lock = threading.Lock()
        self._tripped = False
        self._open_until = 0.0
        self.stalls = 0  # how many times it tripped: a request compares before and after

    def admit(self) -> tuple[bool, bool]:
        """(admitted, probing): closed: every request is admitted; tripped: none until
        the open time has passed, then one probe at a time (the others wait it out)."""
        with self._lock:
            if not self._tripped:
                return True, False
            now = time.monotonic()
            if now < self._open_until:
                return False, False
            self._open_until = now + self._probe_seconds()
            return True, True

    def trip(self) -> None:
        with self._lock:
            self._tripped = True
            self._open_until = time.monotonic() + self._open_seconds()
            self.stalls += 1

    def close(self) -> None:
        with self._lock:
            self._tripped = False

    @property
    def tripped(self) -> bool:
        return self._tripped


def _primary_probe_seconds() -> float:
    # The probe may take the whole wait bound: hold the others off meanwhile.
    return OPEN_SECONDS + ((_bounds[1] or 0.0) if _bounds else 0.0)


BREAKER = Breaker(open_seconds=lambda: OPEN_SECONDS, probe_seconds=_primary_probe_seconds)


def statement_timed_out(exc: BaseException) -> bool:
    """PostgreSQL cancelled a statement at statement_timeout (SQLSTATE 57014): the server
    answers, so this is not an outage."""
    return getattr(exc.__cause__, "sqlstate", None) == "57014"


def database_unreachable(exc: BaseException) -> bool:
    """The database did not answer or could not be reached (not a statement the server
    cancelled, which means it answers): note it for the breaker."""
    if isinstance(exc, OperationalError | InterfaceError) and not statement_timed_out(exc):
        # A web server (flakyboard/wsgi.py); a stalled replica is the router's to note.
        if _bounds is not None and getattr(exc, "alias", DEFAULT_DB_ALIAS) == DEFAULT_DB_ALIAS:
            BREAKER.trip()
        return True
    return False


def unavailable_response() -> JsonResponse:
    response = JsonResponse({"error": "database unavailable, retry later"}, status=503)
    response["Retry-After"] = str(round(OPEN_SECONDS))
    return response


class StalledDatabaseMiddleware:
    """In a web server (flakyboard/wsgi.py): 503 at once while the database is known to
    be stalled (see the module docstring), and 503 for any page that finds it so."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _bounds is None:  # not a web server: commands and tests run unbounded
            return self.get_response(request)
        admitted, probing = BREAKER.admit()
        if not admitted:
            return unavailable_response()
        stalls = BREAKER.stalls
        response = self.get_response(request)
        if probing and BREAKER.stalls == stalls:
            BREAKER.close()  # the probe did not find the database stalled
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return unavailable_response() if database_unreachable(exception) else None
