"""Property-based API testing with schemathesis against the project's own OpenAPI schema.

The app runs in-process (WSGI, no network), on a loaded data set, authenticated as a
staff user (so that deliveries and triage writes are reachable). Every GET operation and
the triage PATCH get generated requests, valid and invalid; each response must not be a
5xx and must match the schema: status code documented, content type, body schema.
Path ids are half the time replaced by ids that exist, so detail endpoints answer 200
and not only 404.
"""

import itertools

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi import checks as openapi_checks

from events.models import Delivery, Investigation, Monitor, Repository, TestCase

from .conftest import build_tests

# Django's application, not flakyboard.wsgi's: importing that module makes this process a
# web server (flakyboard.db.bound_database_waits: statement timeouts and the stall
# breaker), which would then act on every later test of the session.
application = get_wsgi_application()

pytestmark = pytest.mark.django_db

CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
]


@pytest.fixture
def keep_test_connection():
    """Django's test Client stops `close_old_connections` from running at the end of each
    request; schemathesis calls the WSGI app directly, so do the same here, or PostgreSQL's
    connection (CONN_MAX_AGE, inside the test's transaction) would be closed after the
    first request."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def loaded(staff, settings, keep_test_connection):
    """A small data set, and the ids that exist in it, per path parameter."""
    settings.FLAKYBOARD_PUBLIC_DASHBOARD = False
    build_tests(6)
    TestCase.objects.filter(pk__in=TestCase.objects.values("pk")[:2]).update(assignee=staff)
    return {
        "token": Token.objects.create(user=staff).key,
        "ids": {
            "/repositories/{id}/": [
                str(Repository.objects.first().pk),
                str(Repository.objects.last().trunk_id),
            ],
            "/test-cases/{id}/": [str(pk) for pk in TestCase.objects.values_list("pk", flat=True)],
            "/test-cases/{id}/timeline/": [str(pk) for pk in TestCase.objects.values_list("pk", flat=True)],
            "/monitors/{id}/": [str(pk) for pk in Monitor.objects.values_list("pk", flat=True)],
            "/investigations/{id}/": [str(pk) for pk in Investigation.objects.values_list("pk", flat=True)],
            "/investigations/{id}/verdict/": [
                str(pk) for pk in Investigation.objects.values_list("pk", flat=True)
            ],
            "/deliveries/{id}/": [str(pk) for pk in Delivery.objects.values_list("pk", flat=True)[:5]],
        },
        "test_ids": [str(pk) for pk in TestCase.objects.values_list("pk", flat=True)],
        "turn": itertools.count(),
    }


# Loaded when the module is collected, from the running app's own /api/schema/ (no
# database: so with the throttles off, whose counters are in the database cache).
# `schemathesis.pytest.from_fixture` would load it lazily, but its 4.x code sets
# `request.node._nodeid`, which pytest 9 no longer has.
with override_settings(
    REST_FRAMEWORK={**django_settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"anon": None, "user": None}}
):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@schema.include(method=["GET", "PATCH"]).parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_api_conforms_to_its_schema(case, loaded):
    turn = next(loaded["turn"])
    path = case.path.removeprefix("/api/v1")
    if turn % 2 and case.path_parameters and not case.meta.is_negative_at(ParameterLocation.PATH):
        if "test_case_id" in case.path_parameters:
            case.path_parameters["test_case_id"] = loaded["test_ids"][turn % len(loaded["test_ids"])]
        elif path in loaded["ids"]:
            ids = loaded["ids"][path]
            case.path_parameters["id"] = ids[turn % len(ids)]
    case.call_and_validate(headers={"Authorization": f"Token {loaded['token']}"}, checks=CHECKS)
