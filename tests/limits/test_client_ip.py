"""The client address rule (limits/client_ip.py), shared by the API throttles and the
login limiter."""

import pytest
from django.conf import settings as django_settings
from django.test import RequestFactory

from limits.client_ip import client_ip


def request(remote_addr: str, forwarded_for: str | None = None):
    extra = {"REMOTE_ADDR": remote_addr}
    if forwarded_for is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return RequestFactory().get("/", **extra)


@pytest.mark.parametrize(
    "proxies, remote_addr, forwarded_for, expected",
    [
        # No trusted proxy: the socket's address; whatever the client writes is ignored.
        (0, "192.0.2.1", None, "192.0.2.1"),
        (0, "192.0.2.1", "203.0.113.9", "192.0.2.1"),
        # One proxy: it appended the address it received from (the rightmost entry).
        (1, "10.0.0.2", "203.0.113.9", "203.0.113.9"),
        (1, "10.0.0.2", "1.2.3.4, 203.0.113.9", "203.0.113.9"),
        # Two proxies: the second from the right; the leftmost is the client's own text.
        (2, "10.0.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.1", "203.0.113.9"),
        # A request that reached the app without the header (a health check).
        (1, "10.0.0.2", None, "10.0.0.2"),
    ],
)
def test_only_the_trusted_proxies_entries_are_believed(
    settings, proxies, remote_addr, forwarded_for, expected
):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": proxies}
    assert client_ip(request(remote_addr, forwarded_for)) == expected


def test_default_is_no_trusted_proxy():
    assert django_settings.FLAKYBOARD_TRUSTED_PROXY_COUNT == 0
    assert django_settings.REST_FRAMEWORK["NUM_PROXIES"] == 0


def test_the_login_limiter_uses_the_same_rule(settings):
    from axes.helpers import get_client_ip_address

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    assert get_client_ip_address(request("10.0.0.2", "6.6.6.6, 203.0.113.9")) == "203.0.113.9"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    assert get_client_ip_address(request("10.0.0.2", "6.6.6.6, 203.0.113.9")) == "10.0.0.2"
