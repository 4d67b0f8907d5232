"""The admin history's text for a triage change (a LogEntry's change message), written by
the triage service (events/triage.py) for every change it makes."""

from __future__ import annotations

from typing import Any

from .models import TestCase, Verdict


def verdict_label(value: str) -> str:
    return Verdict(value).label if value else "none"


def change_message(
    *,
    state: tuple[str, str] | None = None,
    assignee: tuple[Any, Any] | None = None,
    note_edited: bool = False,
    verdict: tuple[str, str, str] | None = None,
    via: str | None = None,
) -> str:
    """The admin history's text for one triage change: old → new state and assignee
    ("nobody" for none), whether the note was edited (not its text: notes can be long),
    then where it was made. E.g. "Triage state: New → Fixed. Assignee: nobody → alice.
    Triage note edited. (dashboard)"."""
    parts = []
    if state is not None:
        old, new = (TestCase.Triage(value).label for value in state)
        parts.append(f"Triage state: {old} → {new}.")
    if assignee is not None:
        old, new = (user or "nobody" for user in assignee)
        parts.append(f"Assignee: {old} → {new}.")
    if note_edited:
        parts.append("Triage note edited.")
    if verdict is not None:
        investigation, old, new = verdict
        parts.append(
            f"Verdict on investigation {investigation[:8]}: {verdict_label(old)} → {verdict_label(new)}."
        )
    if via:
        parts.append(f"({via})")
    return " ".join(parts)
