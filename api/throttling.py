"""Throttles that read their rate when a request comes in, not at import time, and count
in the cache that every server process shares.

DRF's SimpleRateThrottle copies DEFAULT_THROTTLE_RATES into a class attribute when
rest_framework.throttling is imported, so a changed setting (tests, `override_settings`)
would be ignored. Rates come from FLAKYBOARD_API_THROTTLE_ANON / _USER (settings.py);
"off" disables a throttle.

Counters live in the THROTTLE_CACHE alias (the database by default), not in DRF's choice
of the default cache: a local-memory cache counts per process, so 3 gunicorn workers
would allow 3 times the limit. Anonymous clients are told apart by address with the
rule of limits/client_ip.py (DRF's get_ident with NUM_PROXIES from
FLAKYBOARD_TRUSTED_PROXY_COUNT), so a rotated X-Forwarded-For is not a new client.

DRF counts by reading a client's list of request times, appending, and writing it back.
Two workers doing that at once would each write their own list and lose the other's
request (a burst got past the limit in tests/test_deploy.py). With the database cache
the read and the write are one transaction holding a lock on the client's key: an
advisory lock on PostgreSQL; on SQLite the IMMEDIATE transaction (settings.py) takes
the database's write lock at BEGIN.
"""

from typing import Any, cast

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router, transaction
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from flakyboard.db_router import RERUN_ATTRIBUTE


class SharedCounters(SimpleRateThrottle):
    # DRF's `cache` is a class attribute; here it is read-only and looked up per request.
    @property
    def cache(self) -> BaseCache:  # type: ignore[override]
        # Looked up per request: `caches` hands each thread its own connection object.
        return caches[settings.THROTTLE_CACHE]

    def get_rate(self) -> str | None:
        # Rates are "N/period" text or None (settings.py); the stubs type them as numbers.
        rates = cast("dict[str, str | None]", api_settings.DEFAULT_THROTTLE_RATES)
        return rates.get(self.scope) if self.scope is not None else None

    def allow_request(self, request: Any, view: Any) -> bool:
        if getattr(request, RERUN_ATTRIBUTE, False):
            return True  # run again on the primary (flakyboard/db_router.py): counted already
        cache = self.cache
        if self.rate is None or not isinstance(cache, DatabaseCache):
            return super().allow_request(request, view)
        using = router.db_for_write(cache.cache_model_class)
        with transaction.atomic(using=using):
            key = self.get_cache_key(request, view)
            if key is not None and connections[using].vendor == "postgresql":
                with connections[using].cursor() as cursor:
                    # Held until the transaction ends: the next request of this client
                    # reads the list this one writes.
                    cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])
            return super().allow_request(request, view)


class AnonThrottle(SharedCounters, AnonRateThrottle):
    pass


class UserThrottle(SharedCounters, UserRateThrottle):
    pass
