"""Who may use the API: the dashboard's rule for reads, the admin's rule for triage."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeGuard

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def can_triage(user: User | AnonymousUser | None) -> TypeGuard[User]:
    """Staff, or anyone holding `events.change_testcase` (superusers hold every permission)."""
    return bool(user and user.is_authenticated and (user.is_staff or user.has_perm("events.change_testcase")))


def _user(request: Request) -> User | AnonymousUser | None:
    """The request's user; DRF gives None for an anonymous request when its setting
    UNAUTHENTICATED_USER is None (the stubs leave that case out)."""
    return request.user


class ReadOrTriage(BasePermission):
    """Reads: any authenticated user, or anyone when FLAKYBOARD_PUBLIC_DASHBOARD=true (the
    dashboard's own rule, dashboard/access.py). Writes (PATCH of triage fields): see
    `can_triage`.

    Anonymous requests that are refused get 401, not 403: TokenAuthentication comes first
    in DEFAULT_AUTHENTICATION_CLASSES, so DRF can send `WWW-Authenticate: Token`.
    """

    message = "You do not have permission to change triage fields: staff or events.change_testcase needed."

    def has_permission(self, request: Request, view) -> bool:
        user = _user(request)
        if request.method in SAFE_METHODS:
            return bool(user and user.is_authenticated) or settings.FLAKYBOARD_PUBLIC_DASHBOARD
        return can_triage(user)


class StaffOnly(BasePermission):
    """The delivery log holds raw payloads and headers: staff only, public dashboard or not."""

    message = "Only staff users may read the delivery log."

    def has_permission(self, request: Request, view) -> bool:
        user = _user(request)
        return bool(user and user.is_authenticated and user.is_staff)
