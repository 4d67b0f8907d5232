from datetime import timedelta

from django import template
from django.http import QueryDict
from django.utils.html import format_html, json_script

from events.metrics import PERIODS

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
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    if "page" not in changes:
        params.pop("page", None)  # a new filter starts again on page 1
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.simple_tag(takes_context=True)
def scope_query(context) -> str:
    """The period and repository of the current page as a query string ("" when none), for
    the navigation: the scope chosen on one page follows to the next. Only well-formed
    values travel (a page validates them again)."""
    request = context.get("request")
    if request is None:
        return ""
    params = QueryDict(mutable=True)
    period = request.GET.get("period", "")
    if period in PERIODS:
        params["period"] = period
    repository = request.GET.get("repository", "")
    if repository.isdigit():
        params["repository"] = repository
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else ""
