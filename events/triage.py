"""The triage service: the one place that writes flakyboard's triage data on tests.

Triage (state, assignee, note) is flakyboard's own data on a test; everything else on a
TestCase is projected from Trunk's deliveries. The admin (change form and actions), the
dashboard's triage form and the API's PATCH all write through `triage_test` or
`triage_tests`, which:

- write only the triage columns, with one UPDATE: a projection may be updating Trunk's
  columns of the same row meanwhile, and a `save()` of the whole row would put back the
  values read before it;
- write and log nothing for a test whose triage already has the requested values;
- record every changed test in Django's admin log (`LogEntry`), so the admin's history of
  a test shows every triage change whatever made it, in one format (`change_message`);
- and in the test's triage history (`TriageEvent`: who, when, what changed), which the
  test page, the admin and the API show and the owners' targets read (METRICS "Time to
  triage": the first triage action at or after an episode's start).

Verdicts on investigations (METRICS "Investigation verdict") are triage too:
`set_verdict` / `set_verdicts` write them, with the same log and history.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.dispatch import Signal
from django.utils import timezone

from .models import Investigation, InvestigationVerdict, TestCase, TriageEvent, Verdict
from .rollups.calibration import add_calibration, verdict_tally
from .rollups.calibration import change as calibration_change
from .rollups.shared import add_target_tally
from .rollups.targets import change_of
from .rollups.triaged import refresh_first_triage
from .triage_messages import change_message

# Where a change was made, shown in parentheses after it in the admin history. The
# admin's change form passes nothing (the history page is the admin's own); its actions
# pass "action: <what>".
VIA_DASHBOARD = "dashboard"
VIA_API = "API"

# The service's keyword for each triage column (what forms and serializers call them).
FIELDS = {"triage_state": "state", "assignee": "assignee", "triage_note": "note"}
UPDATE_CHUNK = 500  # rows per UPDATE ... WHERE pk IN (...): stays under SQLite's variable limit


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()  # the default of every field: leave it as it is


@dataclass(frozen=True)
class TriageResult:
    """How many of the given tests changed, and how many already had the values."""

    changed: int
    unchanged: int


def triage_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """The service's keywords for the triage columns present in `data` (a form's
    cleaned data, a serializer's validated data): `{"triage_state": x}` -> `{"state": x}`."""
    return {keyword: data[field] for field, keyword in FIELDS.items() if field in data}


def triage_test(
    test_case: TestCase,
    *,
    by: AbstractBaseUser,
    state: str = KEEP,
    assignee: AbstractBaseUser | None = KEEP,
    note: str = KEEP,
    via: str | None = None,
    at: datetime | None = None,
) -> list[str]:
    """Set the triage of one test; returns the columns that changed (none: nothing was
    written or logged). `test_case` is updated in memory too. `at`: when it happened
    (default now; the demo replays a history of triage actions at their own times)."""
    values = _columns(state=state, assignee=assignee, note=note)
    changes, _total = _write(
        TestCase.objects.filter(pk=test_case.pk), values, by=by, via=via, count=False, at=at
    )
    for field, value in values.items():
        setattr(test_case, field, value)
    return changes[0] if changes else []


def triage_tests(
    tests: QuerySet[TestCase] | Iterable[Any],
    *,
    by: AbstractBaseUser,
    state: str = KEEP,
    assignee: AbstractBaseUser | None = KEEP,
    note: str = KEEP,
    via: str | None = None,
    at: datetime | None = None,
) -> TriageResult:
    """Set the triage of many tests (a queryset, or test ids), in one transaction; one
    log entry per test that changed."""
    if not isinstance(tests, QuerySet):
        tests = TestCase.objects.filter(pk__in=list(tests))
    changes, total = _write(tests, _columns(state=state, assignee=assignee, note=note), by=by, via=via, at=at)
    return TriageResult(changed=len(changes), unchanged=total - len(changes))


def set_verdict(
    investigation: Investigation,
    *,
    by: AbstractBaseUser,
    verdict: str,
    via: str | None = None,
    at: datetime | None = None,
) -> bool:
    """Set the verdict on one investigation ("" for none); returns whether it changed."""
    return set_verdicts([investigation.pk], by=by, verdict=verdict, via=via, at=at).changed == 1


def set_verdicts(
    investigations: QuerySet[Investigation] | Iterable[Any],
    *,
    by: AbstractBaseUser,
    verdict: str,
    via: str | None = None,
    at: datetime | None = None,
) -> TriageResult:
    """Set the verdict ("confirmed", "rejected", or "" for none) on many investigations
    (a queryset, or ids), in one transaction: one history entry and one log entry per
    investigation whose verdict changed."""
    if verdict not in ("", *Verdict.values):
        raise ValueError(f"unknown verdict {verdict!r}")
    if not isinstance(investigations, QuerySet):
        investigations = Investigation.objects.filter(pk__in=list(investigations))
    now = at or timezone.now()
    with transaction.atomic():
        # Lock the investigations (in pk order: no deadlock between overlapping
        # selections), then read their verdicts: two requests at once (a double click,
        # two API clients) both read "no verdict" and both inserted one, and the second
        # failed on the primary key (500). Read after the lock, in a statement of its
        # own, the second sees the first's verdict (READ COMMITTED: a fresh snapshot).
        ids = investigations.values_list("pk", flat=True)  # a subquery: any selection size
        selected = Investigation.objects.filter(pk__in=ids).order_by("pk")
        # Their tests' rows first (the LOCK ORDER of events/rollups/: tests, then their
        # investigations and rollup rows), as the projection takes them.
        _lock_tests(selected.values_list("test_case_id", flat=True))
        list(selected.select_for_update().values_list("pk", flat=True))
        rows = list(selected.values_list("pk", "test_case_id", "test_case__name", "verdict__verdict"))
        changed = [(pk, test, name, old or "") for pk, test, name, old in rows if (old or "") != verdict]
        pks = [pk for pk, *_ in changed]
        counted = verdict_tally(pks)
        InvestigationVerdict.objects.filter(pk__in=pks).delete()
        if verdict:
            InvestigationVerdict.objects.bulk_create(
                [
                    InvestigationVerdict(investigation_id=pk, verdict=verdict, by_id=by.pk, at=now)
                    for pk in pks
                ]
            )
        content_type = ContentType.objects.get_for_model(TestCase)
        entries, events = [], []
        for pk, test_id, name, old in changed:
            entry, event = _verdict_record(
                pk, test_id, name, old, verdict, by=by, via=via, at=now, content_type=content_type
            )
            entries.append(entry)
            events.append(event)
        LogEntry.objects.bulk_create(entries)
        TriageEvent.objects.bulk_create(events)
        _refresh_first_triage({e.test_case_id for e in events})
        add_calibration(calibration_change(counted, verdict_tally(pks)))
        if changed:
            _announce()
    return TriageResult(changed=len(changed), unchanged=len(rows) - len(changed))


@dataclass(frozen=True)
class Action:
    """One action of a triage history replayed by `replay`: on a test, the triage columns
    to set (`values`, as `triage_test` takes them: state, assignee, note); or on an
    investigation, its verdict ("" for none)."""

    at: datetime
    by: AbstractBaseUser
    via: str
    test_case_id: Any = None
    values: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    investigation_id: Any = None
    verdict: str = ""


# History and log rows per INSERT of a replay.
REPLAY_BATCH = 2000


def replay(actions: Sequence[Action]) -> Counter[str]:
    """Apply a history of triage actions in time order, as calling `triage_test` and
    `set_verdict` with each in turn would (the same history rows, log entries, final
    triage and verdicts: tests/events/test_triage_history.py), but written in bulk, in
    one transaction: for the demo's history at benchmark sizes (a hundred thousand
    actions). Returns the number of actions that changed something, by kind."""
    test_ids = {a.test_case_id for a in actions if a.test_case_id is not None}
    investigation_ids = {a.investigation_id for a in actions if a.investigation_id is not None}
    done: Counter[str] = Counter()
    content_type = ContentType.objects.get_for_model(TestCase)
    with transaction.atomic():
        verdicts: dict[Any, list[Any]] = {}  # investigation -> [test id, name, verdict, by, at]
        for start_ids in _chunks(sorted(investigation_ids)):
            for pk, test_id, name, verdict in Investigation.objects.filter(pk__in=start_ids).values_list(
                "pk", "test_case_id", "test_case__name", "verdict__verdict"
            ):
                verdicts[pk] = [test_id, name or "", verdict or "", None, None]
        triage: dict[Any, list[Any]] = {}  # test -> [name, state, assignee id, note]
        for start_ids in _chunks(sorted(test_ids)):
            for pk, name, state, assignee_id, note in TestCase.objects.filter(pk__in=start_ids).values_list(
                "pk", "name", "triage_state", "assignee_id", "triage_note"
            ):
                triage[pk] = [name, state, assignee_id, note]
        users = {
            u.pk: str(u) for u in get_user_model().objects.filter(pk__in={r[2] for r in triage.values()})
        }
        users.update({a.by.pk: str(a.by) for a in actions})
        users.update({u.pk: str(u) for a in actions if (u := a.values.get("assignee")) is not None})
        changed_tests, changed_verdicts = set(), set()
        entries, events = [], []
        for action in sorted(actions, key=lambda a: a.at):
            if action.test_case_id is not None and action.test_case_id in triage:
                row = triage[action.test_case_id]
                values = _columns(**{k: action.values.get(k, KEEP) for k in FIELDS.values()})
                changed, entry, event = _triage_record(
                    action.test_case_id,
                    row[0],
                    (row[1], row[2], row[3]),
                    values,
                    users,
                    by=action.by,
                    via=action.via,
                    at=action.at,
                    content_type=content_type,
                )
                if not changed:
                    continue
                row[1] = values.get("triage_state", row[1])
                if "assignee" in values:
                    row[2] = values["assignee"].pk if values["assignee"] is not None else None
                row[3] = values.get("triage_note", row[3])
                changed_tests.add(action.test_case_id)
                done["triage actions"] += 1
            elif action.investigation_id is not None and action.investigation_id in verdicts:
                kept = verdicts[action.investigation_id]
                if kept[2] == action.verdict:
                    continue
                entry, event = _verdict_record(
                    action.investigation_id,
                    kept[0],
                    kept[1],
                    kept[2],
                    action.verdict,
                    by=action.by,
                    via=action.via,
                    at=action.at,
                    content_type=content_type,
                )
                kept[2:] = [action.verdict, action.by.pk, action.at]
                changed_verdicts.add(action.investigation_id)
                done["verdicts"] += 1
            else:
                continue
            entries.append(entry)
            events.append(event)
        TestCase.objects.bulk_update(
            [
                TestCase(pk=pk, triage_state=row[1], assignee_id=row[2], triage_note=row[3])
                for pk, row in ((pk, triage[pk]) for pk in sorted(changed_tests))
            ],
            ["triage_state", "assignee_id", "triage_note"],
            batch_size=UPDATE_CHUNK,
        )
        counted = verdict_tally(changed_verdicts)
        for start_ids in _chunks(sorted(changed_verdicts)):
            InvestigationVerdict.objects.filter(pk__in=start_ids).delete()
        InvestigationVerdict.objects.bulk_create(
            [
                InvestigationVerdict(investigation_id=pk, verdict=kept[2], by_id=kept[3], at=kept[4])
                for pk in sorted(changed_verdicts)
                if (kept := verdicts[pk])[2]
            ],
            batch_size=REPLAY_BATCH,
        )
        LogEntry.objects.bulk_create(entries, batch_size=REPLAY_BATCH)
        TriageEvent.objects.bulk_create(events, batch_size=REPLAY_BATCH)
        _refresh_first_triage({e.test_case_id for e in events})
        add_calibration(calibration_change(counted, verdict_tally(changed_verdicts)))
    return done


# Sent once a triage write (any way it came) has committed: the dashboard drops the pages
# it shares between readers (dashboard/shared_pages.py), so it shows at once for everyone.
triage_written = Signal()


def _announce() -> None:
    transaction.on_commit(lambda: triage_written.send(sender=TriageEvent))


def _refresh_first_triage(test_ids: set[Any]) -> None:
    """The first triage of these tests' owner episodes after new actions, and what that
    changes in the target tally (a shared row: written after the tests' own rows, LOCK
    ORDER of events/rollups/)."""
    add_target_tally(change_of(test_ids, lambda: refresh_first_triage(test_ids)))


def _lock_tests(test_ids: Any) -> None:
    """Lock these tests' rows, in key order (FOR NO KEY UPDATE, as the projection does;
    SQLite has one writer at a time)."""
    if connection.vendor == "postgresql":
        tests = TestCase.objects.filter(pk__in=test_ids).order_by("pk").select_for_update(no_key=True)
        list(tests.values_list("pk", flat=True))


def _chunks(ids: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(ids), UPDATE_CHUNK):
        yield ids[start : start + UPDATE_CHUNK]


# ---------------------------------------------------------------- the write


def _columns(**keywords: Any) -> dict[str, Any]:
    columns = {field: keywords[keyword] for field, keyword in FIELDS.items()}
    return {field: value for field, value in columns.items() if value is not KEEP}


def _write(
    tests: QuerySet[TestCase],
    values: dict[str, Any],
    *,
    by: AbstractBaseUser,
    via: str | None,
    count: bool = True,
    at: datetime | None = None,
) -> tuple[list[list[str]], int]:
    """Update the tests whose triage differs from `values` and log each one. Returns the
    changed columns of each changed test, and the number of tests given."""
    base = tests.prefetch_related(None).order_by()
    if not values:
        return [], base.count() if count else 1
    differs = Q()
    for field, value in values.items():
        differs |= ~Q(**{field: value})
    with transaction.atomic():
        # Lock the selected tests (in pk order: no deadlock between overlapping
        # selections), then read their triage: two identical requests at once (a double
        # click) both read the old values and both wrote a history row and a log entry.
        # Read after the lock, in a statement of its own, the second sees the first's
        # values (READ COMMITTED: a fresh snapshot) and writes nothing.
        _lock_tests(base.values_list("pk", flat=True))  # a subquery: any selection size
        rows = list(
            base.filter(differs).values_list("pk", "name", "triage_state", "assignee_id", "triage_note")
        )
        # One test (triage_test) needs no count: it is that test, changed or not.
        total = base.count() if count else 1
        pks = [row[0] for row in rows]
        for start in range(0, len(pks), UPDATE_CHUNK):
            TestCase.objects.filter(pk__in=pks[start : start + UPDATE_CHUNK]).update(**values)
        changes = _log(rows, values, by=by, via=via, at=at)
        if rows:
            _announce()
    return changes, total


def _log(
    rows: list[tuple], values: dict[str, Any], *, by: AbstractBaseUser, via: str | None, at: datetime | None
) -> list[list[str]]:
    old_ids = {row[3] for row in rows if row[3]} if "assignee" in values else set()
    users = {u.pk: str(u) for u in get_user_model().objects.filter(pk__in=old_ids)} if old_ids else {}
    content_type = ContentType.objects.get_for_model(TestCase)
    now = at or timezone.now()
    entries, changes, events = [], [], []
    for pk, name, state, assignee_id, note in rows:
        changed, entry, event = _triage_record(
            pk,
            name,
            (state, assignee_id, note),
            values,
            users,
            by=by,
            via=via,
            at=now,
            content_type=content_type,
        )
        changes.append(changed)
        entries.append(entry)
        events.append(event)
    LogEntry.objects.bulk_create(entries)
    TriageEvent.objects.bulk_create(events)
    # The tests' rows are locked by the UPDATE that changed them (_write).
    _refresh_first_triage({e.test_case_id for e in events})
    return changes


def _triage_record(
    pk: Any,
    name: str,
    current: tuple[str, Any, str],
    values: Mapping[str, Any],
    users: Mapping[Any, str],
    *,
    by: AbstractBaseUser,
    via: str | None,
    at: datetime,
    content_type: ContentType,
) -> tuple[list[str], LogEntry, TriageEvent]:
    """What setting `values` on a test whose triage is `current` (state, assignee id,
    note) changes, its admin log entry and its history row. `users`: names of user ids."""
    state, assignee_id, note = current
    new_user = values.get("assignee")
    changed = []
    if "triage_state" in values and values["triage_state"] != state:
        changed.append("triage_state")
    if "assignee" in values and (new_user.pk if new_user else None) != assignee_id:
        changed.append("assignee")
    if "triage_note" in values and values["triage_note"] != note:
        changed.append("triage_note")
    old_user = users.get(assignee_id) if assignee_id else None
    message = change_message(
        state=(state, values["triage_state"]) if "triage_state" in changed else None,
        assignee=(old_user, new_user) if "assignee" in changed else None,
        note_edited="triage_note" in changed,
        via=via,
    )
    event = TriageEvent(
        test_case_id=pk,
        at=at,
        by_id=by.pk,
        via=via or "admin",
        state_from=state if "triage_state" in changed else "",
        state_to=values["triage_state"] if "triage_state" in changed else "",
        assignee_changed="assignee" in changed,
        assignee_from=str(old_user or "") if "assignee" in changed else "",
        assignee_to=str(new_user or "") if "assignee" in changed else "",
        note_edited="triage_note" in changed,
        message=message,
    )
    return changed, _log_entry(content_type, by, at, pk, name, message), event


def _verdict_record(
    investigation_id: Any,
    test_case_id: Any,
    name: str,
    old: str,
    new: str,
    *,
    by: AbstractBaseUser,
    via: str | None,
    at: datetime,
    content_type: ContentType,
) -> tuple[LogEntry, TriageEvent]:
    """The admin log entry and history row of a verdict changed from `old` to `new`."""
    message = change_message(verdict=(str(investigation_id), old, new), via=via)
    event = TriageEvent(
        test_case_id=test_case_id,
        at=at,
        by_id=by.pk,
        via=via or "admin",
        investigation_id=investigation_id,
        verdict_from=old,
        verdict_to=new,
        message=message,
    )
    return _log_entry(content_type, by, at, test_case_id, name or "", message), event


def _log_entry(
    content_type: ContentType, by: AbstractBaseUser, now: Any, pk: Any, name: str, message: str
) -> LogEntry:
    return LogEntry(
        action_time=now,
        user_id=by.pk,
        content_type=content_type,
        object_id=str(pk),
        object_repr=name[:200],
        action_flag=CHANGE,
        change_message=message,
    )
