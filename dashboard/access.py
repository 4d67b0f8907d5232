"""Who may read the dashboard: logged-in users, or everyone when it is made public."""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse


def dashboard_reader(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Require login unless FLAKYBOARD_PUBLIC_DASHBOARD=true."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not settings.FLAKYBOARD_PUBLIC_DASHBOARD and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper
