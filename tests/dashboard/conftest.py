"""Dashboard fixtures: users, logged-in clients, and demo data at chosen sizes, delivered
through the real ingest path (signed, verified, stored, projected)."""

import json
from datetime import UTC, datetime

import pytest

from events import demo
from tests.events.factories import deliver

# A fixed "now" keeps the generated history identical from run to run.
DEMO_NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


@pytest.fixture
def load_demo(db):
    """load_demo(tests=20, days=30): deliver a generated history; returns the plan size."""

    def load(*, tests: int = 20, days: int = 30, seed: int = 7, repositories: int = 2) -> int:
        messages = demo.generate_history(
            now=DEMO_NOW, tests=tests, days=days, seed=seed, repositories=repositories
        )
        plan = demo.plan_deliveries(messages, seed=seed, id_prefix=f"msg_t{seed}_{tests}_")
        for msg_id, payload in plan:
            deliver(json.dumps(payload), msg_id=msg_id)
        return len(plan)

    return load


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("reader", password="pw")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("staffer", password="pw", is_staff=True)


@pytest.fixture
def reader_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client
