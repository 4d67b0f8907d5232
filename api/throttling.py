"""Throttles that read their rate when a request comes in, not at import time.

DRF's SimpleRateThrottle copies DEFAULT_THROTTLE_RATES into a class attribute when
rest_framework.throttling is imported, so a changed setting (tests, `override_settings`)
would be ignored. Rates come from FLAKYBOARD_API_THROTTLE_ANON / _USER (settings.py);
"off" disables a throttle. Counters live in Django's default cache: with the default
local-memory cache each server process counts on its own.
"""

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class AnonThrottle(AnonRateThrottle):
    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class UserThrottle(UserRateThrottle):
    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
