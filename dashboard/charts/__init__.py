"""Plotly figure builders: query results in, figure dicts out (JSON-ready).

Every chart has a title, labelled axes, a legend when it has several series and hover
details. A builder returns None when there is nothing to draw, and the template shows
a readable empty state instead. Colours are the app's (see static/flakyboard/app.css).

One module per chart family; views call them through this package (`charts.x(...)`):

- base: colours, layout and axis helpers, to_json, tests_url
- status: flaky and broken over time, transitions per day
- owners: top owners by flaky tests, tests by status per owner
- monitors: activations per day, time to resolve per monitor type
- investigations: confidence histogram and per day, facts by type, reliability
- timelines: the test page's status and monitor timelines
"""

from ..display import monitor_label
from .base import FONT, PALETTE, STATUS_COLORS, TOP_LEGEND, tests_url, to_json
from .investigations import (
    BAND_COLORS,
    BAND_THRESHOLDS,
    confidence_histogram,
    confidence_over_time,
    facts_by_type,
    investigations_url,
    reliability_diagram,
)
from .monitors import TYPE_PALETTE, monitor_activations, monitor_resolve_times
from .owners import owner_statuses, top_owners
from .status import status_trend, transitions
from .timelines import monitor_timeline, status_timeline

__all__ = [
    "BAND_COLORS",
    "BAND_THRESHOLDS",
    "FONT",
    "PALETTE",
    "STATUS_COLORS",
    "TOP_LEGEND",
    "TYPE_PALETTE",
    "confidence_histogram",
    "confidence_over_time",
    "facts_by_type",
    "investigations_url",
    "monitor_activations",
    "monitor_label",
    "monitor_resolve_times",
    "monitor_timeline",
    "owner_statuses",
    "reliability_diagram",
    "status_timeline",
    "status_trend",
    "tests_url",
    "to_json",
    "top_owners",
    "transitions",
]
