"""Throttle counters shared by every server process, and the client address they count
by: the trusted-proxy rule, so a rotated X-Forwarded-For is not a new client.

A multi-process check against real gunicorn workers is in tests/test_deploy.py."""

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.db import connection
from rest_framework.test import APIClient

from api.throttling import AnonThrottle

pytestmark = pytest.mark.django_db

URL = "/api/v1/repositories/"


@pytest.fixture
def limited(settings, history):
    """Public API (anonymous reads allowed), 3 anonymous requests a minute."""
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = True
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "3/minute", "user": None},
    }
    return settings


def table_keys() -> list[str]:
    table = connection.ops.quote_name(caches[django_settings.THROTTLE_CACHE]._table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT cache_key FROM {table}")  # noqa: S608 - our own table name
        return [row[0] for row in cursor.fetchall()]


def test_the_throttle_cache_is_a_database_table(settings):
    cache = caches[settings.THROTTLE_CACHE]
    assert isinstance(cache, DatabaseCache)
    assert cache._table in connection.introspection.table_names()


def test_counters_are_rows_of_the_database_table_that_another_process_reads(limited, anon):
    assert [anon.get(URL).status_code for _ in range(2)] == [200, 200]
    # The count is in the database, not in this process: a row of the cache table...
    assert [key for key in table_keys() if "throttle_anon_127.0.0.1" in key]
    # ...that a separately built cache (what another worker process builds from the same
    # settings) reads, so a throttle there counts on from 2 and allows one more.
    other_cache = caches.create_connection(django_settings.THROTTLE_CACHE)
    assert other_cache is not caches[django_settings.THROTTLE_CACHE]

    class OtherWorkersThrottle(AnonThrottle):
        cache = other_cache

    request = APIClient().get(URL).wsgi_request  # the 3rd request: allowed
    throttle = OtherWorkersThrottle()
    assert len(other_cache.get(throttle.get_cache_key(request, None))) == 3
    assert throttle.allow_request(request, None) is False  # the 4th, counted there: refused
    assert anon.get(URL).status_code == 429  # and here, after the other worker's


def test_a_rotated_x_forwarded_for_is_the_same_anonymous_client(limited, anon):
    # No trusted proxy (the default): the header is the client's own text, ignored.
    statuses = [anon.get(URL, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code for i in range(6)]
    assert statuses == [200, 200, 200, 429, 429, 429]


def test_behind_one_proxy_the_client_is_the_rightmost_forwarded_address(limited, anon):
    limited.REST_FRAMEWORK = {**limited.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # The proxy (REMOTE_ADDR) appended the address it saw; what is left of it is the
    # client's and changes nothing.
    statuses = [anon.get(URL, HTTP_X_FORWARDED_FOR=f"10.0.0.{i}, 203.0.113.7").status_code for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    # Another client behind the same proxy has its own count.
    assert anon.get(URL, HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 200
