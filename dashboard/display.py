"""Values computed for a page, attached to the rows its template shows."""

from django.db.models import Model


def attach_display(row: Model, **values: object) -> None:
    """Give a fetched row attributes that only its template reads (`investigation.band`,
    `event.label`). They are presentation, not data, so the model classes do not declare
    them: they are set by name here, the one place the dashboard adds attributes to rows."""
    for name, value in values.items():
        setattr(row, name, value)
