"""What a verified body is: its event type, its payload, its typed event and the outcome
the delivery is stored with (processed, ignored or invalid, with the error).

One function for every path that reads a stored or arriving body: the receiver, the
projector, the rebuild and reprocessing.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from events.models import Delivery

from . import parsing, reader, registry

Classified = tuple[str, Any, parsing.Event | None, str, str]


def classify(body: str | bytes, *, received_at: datetime) -> Classified:
    """(event_type, payload, event, outcome, error) for a verified body.

    `received_at` bounds the plausible event times (see `parsing`). Whatever the body
    (not UTF-8, not JSON, nested too deep for the parser), the answer is an outcome,
    never an exception: every verified delivery is stored."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return "", None, None, Delivery.Outcome.INVALID, f"body is not UTF-8: {exc}"
    try:
        payload = json.loads(body)
    except RecursionError:
        return (
            "",
            None,
            None,
            Delivery.Outcome.INVALID,
            "body is not JSON this parser can read: nested too deeply",
        )
    except ValueError as exc:
        return "", None, None, Delivery.Outcome.INVALID, f"body is not JSON: {exc}"
    event_type = parsing.event_type_of(payload)
    if event_type in registry.IGNORED_TYPES:
        return event_type, payload, None, Delivery.Outcome.IGNORED, ""
    try:
        event = registry.parse_event(payload, received_at=received_at)
    except parsing.UnknownEventType as exc:
        return event_type, payload, None, Delivery.Outcome.IGNORED, str(exc)
    except reader.PayloadError as exc:
        return event_type, payload, None, Delivery.Outcome.INVALID, str(exc)
    return event_type, payload, event, Delivery.Outcome.PROCESSED, ""
