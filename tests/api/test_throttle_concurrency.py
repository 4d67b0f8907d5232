"""Concurrent requests of one client against the shared throttle counters, on
PostgreSQL (SQLite serialises writers): the limit holds, however the requests
interleave. Without the lock in api/throttling.py, requests that read the same list of
times each wrote their own back, and more than the limit got through."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from rest_framework.test import APIRequestFactory

from api.throttling import AnonThrottle
from tests.events.test_concurrency import _race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

LIMIT = 3
CLIENTS = 12


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://... (.ci/run does)")


@pytest.fixture
def limited(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": f"{LIMIT}/minute", "user": None},
    }


@pytest.mark.parametrize("round_", range(3))
def test_a_burst_of_one_client_gets_exactly_the_limit_through(limited, round_):
    address = f"203.0.113.{round_ + 1}"

    def request_once(_: int) -> bool:
        request = APIRequestFactory().get("/api/v1/repositories/", REMOTE_ADDR=address)
        request.user = AnonymousUser()
        return AnonThrottle().allow_request(request, None)

    allowed = _race(request_once, CLIENTS)
    assert allowed.count(True) == LIMIT, allowed
