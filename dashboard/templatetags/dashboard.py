from datetime import timedelta

from django import template
from django.http import QueryDict
from django.urls import reverse
from django.utils.html import format_html, json_script

from events.metrics import LABELS, PERIODS

from .. import display
from ..forms import SCOPE_KEYS, scoped_url

register = template.Library()


@register.simple_tag
def chart(figure: dict | None, chart_id: str, empty: str = "No data for this period."):
    """A chart drawn by charts.js from a JSON data island, or the empty state. The figure's
    title is the caption of the chart and its accessible name (role=img: the plot is
    one picture to a screen reader; its numbers are in the page's tables)."""
    if figure is None:
        return format_html('<div class="chart-empty" id="{}"><p>{}</p></div>', chart_id, empty)
    title = (figure.get("layout", {}).get("title", {}) or {}).get("text") or "Chart"
    return format_html(
        '<figure class="chart-figure"><figcaption class="chart-title" id="{}-title">{}</figcaption>'
        '<div class="chart" id="{}" data-chart="{}-data" role="img" aria-labelledby="{}-title"></div>'
        "</figure>{}",
        chart_id,
        title,
        chart_id,
        chart_id,
        chart_id,
        json_script(figure, f"{chart_id}-data"),
    )


@register.filter
def duration(value: timedelta | None) -> str:
    """A compact duration: 3d 4h, 5h 12m, 40m."""
    if not isinstance(value, timedelta):
        return "—"
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


@register.filter
def signed(value: int) -> str:
    return f"+{value}" if value > 0 else ("±0" if value == 0 else f"−{abs(value)}")


@register.simple_tag(takes_context=True)
def query(context, **changes) -> str:
    """The current query string with some parameters changed (None removes one)."""
    params = context["request"].GET.copy()
    for key in [k for k, v in params.items() if v == ""]:
        del params[key]  # empty filters add nothing to a shared link
    # The scope once, and only a well-formed one (a repeated or hostile key is not copied on).
    for key in SCOPE_KEYS:
        params.pop(key, None)
    params.update(_request_scope(context))
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    if "page" not in changes:
        params.pop("page", None)  # a new filter starts again on page 1
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


def _request_scope(context) -> dict[str, str]:
    """The well-formed period and repository of the current page's query string (a page
    validates them again)."""
    request = context.get("request")
    if request is None:
        return {}
    params = {}
    period = request.GET.get("period", "")
    if period in PERIODS:
        params["period"] = period
    repository = request.GET.get("repository", "")
    if repository.isascii() and repository.isdigit():
        params["repository"] = repository
    return params


@register.simple_tag(takes_context=True)
def scope_query(context) -> str:
    """The period and repository of the current page as a query string ("" when none), for
    the navigation: the scope chosen on one page follows to the next. Only well-formed
    values travel (a page validates them again)."""
    params = QueryDict(mutable=True)
    params.update(_request_scope(context))
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else ""


@register.simple_tag(takes_context=True)
def scoped(context, url: str, **params) -> str:
    """`url` (which may carry its own filters) with the current page's period and
    repository, each once: a link from a table or list keeps the scope chosen. `params`
    add filters (`owner=owner.key`) or replace the scope's (`repository=test.repository.pk`)."""
    scope: dict[str, object] = dict(_request_scope(context))
    for key in SCOPE_KEYS:
        if key in params:
            scope[key] = params.pop(key)
    return scoped_url(str(url), scope, **params)


@register.simple_tag
def monitor_label(monitor_type: str, monitor_id: object) -> str:
    """A monitor as every page names it (display.monitor_label)."""
    return display.monitor_label(monitor_type, monitor_id)


@register.filter
def monitor_type(value: str) -> str:
    """A monitor type in words: "failure_rate" -> "Failure rate monitor"."""
    return display.monitor_type_label(value)


@register.filter
def label(key: str) -> str:
    """The one label of a concept (events.metrics.LABELS); an unknown key is an error."""
    return LABELS[key]


@register.simple_tag(takes_context=True)
def webhook_url(context) -> str:
    """The address to give Trunk: this server's receiver, as the browser reached it
    (`{scheme}://{host}/webhooks/trunk/`)."""
    path = reverse("trunk-webhook")
    path = path if path.endswith("/") else f"{path}/"  # the receiver takes both; the README's spelling
    request = context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


@register.filter
def score(value: float | None) -> str:
    """A score to at most two decimals, without trailing zeros: 39.4, 9.85, 12."""
    if value is None:
        return "—"
    return f"{round(value, 2):.2f}".rstrip("0").rstrip(".")
