"""The client's address, the one rule for the API throttles and the login limiter.

X-Forwarded-For is written by whoever sends the request, so it is believed only as far
as the proxies we run: FLAKYBOARD_TRUSTED_PROXY_COUNT (settings.py). With 0, the default,
the address is REMOTE_ADDR and the header is ignored. With N > 0, each trusted proxy
appended the address it received the request from, so the client is the N-th entry from
the right; anything to the left of it is the client's own text and could be rotated at
will to look like a new client on every request.

That is exactly the rule of DRF's `BaseThrottle.get_ident` when NUM_PROXIES is an
integer (settings.py sets it from the same variable), so it is used as is: the API
throttles call it themselves, and django-axes gets it through AXES_CLIENT_IP_CALLABLE.
(DRF's default, NUM_PROXIES = None, would key on the whole header: the bypass.)
"""

from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

_IDENT = BaseThrottle()


def client_ip(request: HttpRequest) -> str:
    """The client's address as the trusted proxies (or the socket) report it."""
    return _IDENT.get_ident(request)
