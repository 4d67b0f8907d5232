"""The weekly digest (docs/metrics.md, "The weekly digest"): the week that ends now beside
the week before, for everyone, one owner or the tests without owners."""

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from events.metrics import NO_OWNER, READY_TO_RELEASE_HEALTHY

from ..access import dashboard_reader
from ..forms import owner_choices, scope_from
from ..selectors import digest as selectors
from ..selectors.common import NO_OWNER_PARAM
from ..selectors.owners import owner_by_param
from ..selectors.tests import no_test_yet
from ..shared_pages import render_shared


def _owner(value: str) -> tuple[str | None, str, str | None] | None:
    """The `owner` parameter as (owner key, name, owner page URL): absent or blank for
    everyone (None), "none" or "(no owner)" for the tests without owners (""), else an
    owner's id, key or name in any case. None for an owner nobody knows."""
    value = value.strip()
    if not value:
        return None, "", None
    if value.casefold() in (NO_OWNER_PARAM, NO_OWNER):
        return "", NO_OWNER, reverse("dashboard:codeowner-detail", args=[NO_OWNER_PARAM])
    found = owner_by_param(value)
    if found is None:
        return None
    return found.key, found.name, reverse("dashboard:codeowner-detail", args=[found.pk])


@require_GET
@dashboard_reader
def digest(request: HttpRequest) -> HttpResponse:
    # The week always ends now: no period selector (the period travels on in links).
    scope = scope_from(request, period_applies=False)

    def content() -> dict:
        asked = request.GET.get("owner", "")
        owner = _owner(asked)
        context = {
            "scope": scope,
            "asked_owner": asked,
            "owner_choices": owner_choices(),
            "ready_days": READY_TO_RELEASE_HEALTHY.days,
            "digest": None,
            "no_test_yet": no_test_yet,  # called by the template only when nothing happened
        }
        if owner is not None:
            key, name, owner_url = owner
            context |= {
                "owner_key": key,
                "owner_param": NO_OWNER_PARAM if key == "" else (key or ""),
                "owner_name": name,
                "owner_url": owner_url,
                "digest": selectors.weekly_digest(
                    owner_key=key, now=scope.period.now, repository=scope.repository_id
                ),
            }
        return context

    return render_shared(request, "dashboard/digest.html", content, {"scope": scope})
