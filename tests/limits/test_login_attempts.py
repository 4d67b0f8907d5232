"""Login attempts are limited (django-axes) on every login view: the dashboard's and the
admin's. Keyed by username and client address (the rule of limits/client_ip.py)."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db

PASSWORD = "the-right-password-42"
LOGIN_VIEWS = ["/accounts/login/", "/admin/login/"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Every allowed attempt hashes a password; the default hasher is slow on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("alice", password=PASSWORD, is_staff=True)


def attempt(client: Client, url: str, password: str, **extra) -> int:
    return client.post(url, {"username": "alice", "password": password}, **extra).status_code


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("url", LOGIN_VIEWS)
def test_100_wrong_passwords_meet_a_lockout_and_then_the_right_one_is_refused(client, staff, url):
    limit = django_settings.AXES_FAILURE_LIMIT
    assert 1 <= limit <= 20  # the configured default, not a value made up for the test
    statuses = [attempt(client, url, f"guess-{i}") for i in range(100)]
    # The form answers each wrong password until the limit; from there on, 429.
    assert statuses == [200] * (limit - 1) + [429] * (100 - limit + 1)
    locked = client.post(url, {"username": "alice", "password": PASSWORD})
    assert locked.status_code == 429 and not logged_in(client)
    assert "Too many login attempts" in locked.content.decode()
    assert f"failed {limit} times" in locked.content.decode()


def test_a_lockout_is_per_username_and_address(client, staff, django_user_model):
    django_user_model.objects.create_user("bob", password=PASSWORD)
    for i in range(django_settings.AXES_FAILURE_LIMIT):
        attempt(client, "/accounts/login/", f"guess-{i}")
    assert attempt(client, "/accounts/login/", PASSWORD) == 429
    # Alice from elsewhere: an attacker cannot lock a colleague out.
    elsewhere = Client(REMOTE_ADDR="192.0.2.50")
    assert attempt(elsewhere, "/accounts/login/", PASSWORD) == 302 and logged_in(elsewhere)
    # Bob from the attacker's address is not locked either.
    response = client.post("/accounts/login/", {"username": "bob", "password": PASSWORD})
    assert response.status_code == 302 and logged_in(client)


def test_a_rotated_x_forwarded_for_does_not_escape_the_lockout(client, staff):
    # No trusted proxy (the default): the header is ignored, the address is the socket's.
    statuses = [
        attempt(client, "/accounts/login/", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
        for i in range(30)
    ]
    assert statuses.count(429) == 30 - django_settings.AXES_FAILURE_LIMIT + 1
    assert attempt(client, "/accounts/login/", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.200") == 429


def test_behind_a_trusted_proxy_the_lockout_is_the_forwarded_clients(settings, staff):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = Client(REMOTE_ADDR="10.0.0.2")  # every request arrives from the proxy
    for i in range(settings.AXES_FAILURE_LIMIT):
        attempt(proxy, "/accounts/login/", f"guess-{i}", HTTP_X_FORWARDED_FOR=f"6.6.6.{i}, 203.0.113.9")
    assert attempt(proxy, "/accounts/login/", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.9") == 429
    assert AccessAttempt.objects.get().ip_address == "203.0.113.9"
    # Another client behind the same proxy logs in.
    other = Client(REMOTE_ADDR="10.0.0.2")
    assert attempt(other, "/accounts/login/", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.10") == 302


def test_the_lockout_ends_after_the_cool_off(client, staff):
    for i in range(django_settings.AXES_FAILURE_LIMIT):
        attempt(client, "/accounts/login/", f"guess-{i}")
    assert attempt(client, "/accounts/login/", PASSWORD) == 429
    cool_off = django_settings.AXES_COOLOFF_TIME
    AccessAttempt.objects.update(attempt_time=timezone.now() - cool_off - timedelta(seconds=1))
    assert attempt(client, "/accounts/login/", PASSWORD) == 302 and logged_in(client)


def test_a_success_resets_the_failures(client, staff):
    limit = django_settings.AXES_FAILURE_LIMIT
    for i in range(limit - 1):
        attempt(client, "/accounts/login/", f"guess-{i}")
    assert attempt(client, "/accounts/login/", PASSWORD) == 302
    client.post("/accounts/logout/")
    # As many failures again are still below the limit.
    assert [attempt(client, "/accounts/login/", f"again-{i}") for i in range(limit - 1)] == [200] * (
        limit - 1
    )
