"""Dashboard fixtures: users and logged-in clients (demo data: `load_demo`, tests/conftest.py)."""

import pytest


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
