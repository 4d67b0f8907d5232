"""Who may read the dashboard: logged-in users, or everyone when it is made public."""

from collections.abc import Callable
from functools import wraps
from typing import Concatenate, ParamSpec, TypeVar

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase

_Request = TypeVar("_Request", bound=HttpRequest)
_Params = ParamSpec("_Params")
_Response = TypeVar("_Response", bound=HttpResponseBase)


def dashboard_reader(
    view: Callable[Concatenate[_Request, _Params], _Response],
) -> Callable[Concatenate[_Request, _Params], _Response | HttpResponseRedirect]:
    """Require login unless FLAKYBOARD_PUBLIC_DASHBOARD=true."""

    @wraps(view)
    def wrapper(
        request: _Request, /, *args: _Params.args, **kwargs: _Params.kwargs
    ) -> _Response | HttpResponseRedirect:
        if not settings.FLAKYBOARD_PUBLIC_DASHBOARD and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper
