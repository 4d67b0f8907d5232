"""Values computed for a page, attached to the rows its template shows."""

from django.db.models import Model


def attach_display(row: Model, **values: object) -> None:
    """Give a fetched row attributes that only its template reads (`investigation.band`,
    `event.label`). They are presentation, not data, so the model classes do not declare
    them: they are set by name here, the one place the dashboard adds attributes to rows."""
    for name, value in values.items():
        setattr(row, name, value)


# ---------------------------------------------------------------- monitors

# Trunk's monitor events carry a monitor's id and type, no name (/work/shared's
# trunk-webhooks.md, 2.1): a monitor is shown by its type in words and its short id.
MONITOR_SHORT_ID = 8


def monitor_type_label(monitor_type: str) -> str:
    """ "failure_rate" -> "Failure rate monitor" (an unknown type is shown the same way)."""
    words = " ".join(str(monitor_type).replace("_", " ").replace("-", " ").split())
    return f"{words[:1].upper()}{words[1:]} monitor" if words else "Monitor"


def monitor_label(monitor_type: str, monitor_id: object, name: str | None = None) -> str:
    """The one way a monitor is named on every page and chart: "Failure rate monitor ·
    1a2b3c4d" (its name instead of the short id, should Trunk ever send one)."""
    return f"{monitor_type_label(monitor_type)} · {name or str(monitor_id)[:MONITOR_SHORT_ID]}"
