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
"""

from typing import cast

from django.conf import settings
from django.core.cache import BaseCache, caches
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle


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


class AnonThrottle(SharedCounters, AnonRateThrottle):
    pass


class UserThrottle(SharedCounters, UserRateThrottle):
    pass
