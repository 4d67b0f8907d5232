"""The one place that reads Trunk payload keys: raw dict -> typed event, or a clear error.

Event shapes follow ../shared/trunk-webhooks.md. Rules that hold for every type:
- unknown extra fields are ignored, never an error;
- optional fields may be missing, null or empty and fall back to an empty value;
- a required field that is missing or of the wrong type raises `PayloadError` naming
  the field by its dotted path (`test_case.id`, `facts[2].confidence`);
- statuses are normalised to upper case (`flaky` and `FLAKY` are one status);
- `evidence` is free-form JSON, kept as sent except where the database could not hold
  it (see `_free_json`);
- text is made storable: NUL and lone surrogates (legal in JSON, refused by PostgreSQL
  and UTF-8) become U+FFFD, and text longer than its column is cut with an ellipsis (the
  raw body keeps every byte);
- numbers must mean what their field means: finite, and inside the field's range;
- event times must be plausible (../shared/METRICS.md): not before 2000-01-01, not more
  than an hour after the delivery was received.
"""

from __future__ import annotations

import itertools
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

STATUSES = ("HEALTHY", "FLAKY", "BROKEN")
MONITOR_STATUSES = ("active", "resolved")

# Plausible event times (../shared/METRICS.md): so no figure reaches into year 1 or the future.
from events.metrics import EARLIEST_EVENT_TIME, LATEST_AFTER_RECEIPT  # noqa: E402

# The longest text each field keeps: the bounded columns they are stored in (a test
# checks these against the models). Longer text is cut; the raw body keeps it whole.
NAME_MAX = 1000  # name, classname, parent, file path, test URL
VARIANT_MAX = 255
OWNER_MAX = 255  # also once case-folded: the owner key
REPOSITORY_URL_MAX = 500
MONITOR_TYPE_MAX = 100
MONITOR_STATUS_MAX = 32
FACT_TYPE_MAX = 100
ACTOR_MAX = 255
SETTING_MAX = 64
# A test's owners and an investigation's facts that are applied: CODEOWNERS names a
# handful, an investigation a few facts. A signed body of 130,000 owners took longer
# than Svix waits (15 s) and than the web's statement timeout; the raw body keeps the rest.
OWNERS_MAX = 100
FACTS_MAX = 1000
# A count's column is a 32-bit integer; no real count comes near it.
COUNT_MAX = 2**31 - 1
# Free-form JSON (`evidence`) deeper than this is refused: it is stored as JSON and shown
# on pages, and every reader of it (json, the database, templates) must stay far from
# Python's recursion limit.
EVIDENCE_MAX_DEPTH = 32

# Legal in JSON text ("\u0000", "\ud800") but refused by PostgreSQL text (NUL) or by
# UTF-8 itself (lone surrogates).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """`text` with the characters no database column can hold replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text)


def bounded(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, the last one an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class PayloadError(ValueError):
    """The payload is not a valid event of its type. The message names the field."""

    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class UnknownEventType(Exception):
    """A well-formed delivery of a type flakyboard does not handle (yet): kept, ignored."""

    def __init__(self, event_type: str):
        self.event_type = event_type
        super().__init__(f"unknown event type {event_type!r}")


# ---------------------------------------------------------------- typed events


@dataclass(frozen=True)
class RepositoryRef:
    trunk_id: uuid.UUID | None
    html_url: str


@dataclass(frozen=True)
class TestCaseRef:
    """The test case as an event describes it. `None` means "not sent"."""

    __test__ = False

    id: uuid.UUID
    name: str
    classname: str | None = None  # None: not sent (v1 shapes have no classname)
    parent: str = ""
    file_path: str = ""
    html_url: str = ""
    codeowners: tuple[str, ...] = ()
    quarantined: bool | None = None
    variant: str = ""
    failure_rate_last_7d: float | None = None
    pull_requests_impacted_last_7d: int | None = None
    repository: RepositoryRef | None = None


@dataclass(frozen=True)
class Event:
    event_type: str
    occurred_at: datetime
    test_case: TestCaseRef


@dataclass(frozen=True)
class MonitorStatusChanged(Event):
    monitor_id: uuid.UUID
    monitor_type: str
    monitor_status: str  # active | resolved
    evidence: Any = None


@dataclass(frozen=True)
class StatusChanged(Event):
    """v2 `v2.test_case.status_changed` and legacy v1 `test_case.status_changed`."""

    previous_status: str
    new_status: str
    monitor_id: uuid.UUID | None = None
    monitor_type: str = ""
    monitor_status: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Fact:
    fact_type: str
    content: str
    confidence: float | None


@dataclass(frozen=True)
class InvestigationCompleted(Event):
    investigation_id: uuid.UUID
    confidence: float
    markdown_summary: str
    failure_message: str
    facts: tuple[Fact, ...] = field(default=())


@dataclass(frozen=True)
class QuarantineSettingChanged(Event):
    actor_email: str
    actor_name: str
    previous_setting: str
    updated_setting: str
    reason: str


# ---------------------------------------------------------------- field readers


class PayloadReader:
    """Typed access to one JSON object, with the dotted path for error messages."""

    def __init__(self, data: Any, path: str = "", *, received_at: datetime):
        if not isinstance(data, dict):
            raise PayloadError(path or "(body)", f"expected an object, got {json_type(data)}")
        self.data = data
        self.path = path
        self.received_at = received_at  # bounds the plausible event times

    def _p(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None and required:
            raise PayloadError(self._p(key), "required field is missing")
        return value

    def obj(self, key: str, *, required: bool = True) -> PayloadReader | None:
        value = self._get(key, required)
        return None if value is None else self.child(value, self._p(key))

    def child(self, data: Any, path: str) -> PayloadReader:
        return PayloadReader(data, path, received_at=self.received_at)

    def str(
        self, key: str, *, required: bool = False, nonempty: bool = False, limit: int | None = None
    ) -> str:
        """The string at `key`, storable, and cut to `limit` characters when given."""
        value = self._get(key, required)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise PayloadError(self._p(key), f"expected a string, got {json_type(value)}")
        if nonempty and not value.strip():
            raise PayloadError(self._p(key), "must not be empty")
        value = storable_text(value)
        return value if limit is None else bounded(value, limit)

    def uuid(self, key: str, *, required: bool = True) -> uuid.UUID | None:
        text = self.str(key, required=required)
        if not text and not required:
            return None
        try:
            return uuid.UUID(text)
        except ValueError:
            raise PayloadError(self._p(key), f"expected a UUID, got {text[:80]!r}") from None

    def bool(self, key: str) -> bool | None:
        value = self._get(key, False)
        if value is not None and not isinstance(value, bool):
            raise PayloadError(self._p(key), f"expected true or false, got {json_type(value)}")
        return value

    def number(
        self, key: str, *, required: bool = False, lo: float | None = None, hi: float | None = None
    ) -> float | None:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PayloadError(self._p(key), f"expected a number, got {json_type(value)}")
        try:
            number = float(value)  # an integer of 400 digits overflows a float
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            # JSON cannot carry NaN or infinities back out (the API), nor can a chart.
            raise PayloadError(self._p(key), f"expected a finite number, got {_describe_number(value)}")
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            raise PayloadError(
                self._p(key), f"expected a number from {lo} to {hi}, got {_describe_number(value)}"
            )
        return number

    def integer(self, key: str, *, lo: int = 0, hi: int = COUNT_MAX) -> int | None:
        value = self._get(key, False)
        if value is None:
            return None
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise PayloadError(self._p(key), f"expected an integer, got {_describe_number(value)}")
        if not lo <= value <= hi:
            raise PayloadError(
                self._p(key), f"expected an integer from {lo} to {hi}, got {_describe_number(value)}"
            )
        return value

    def time(self, key: str, *, required: bool = True) -> datetime | None:
        text = self.str(key, required=required)
        if not text:
            if required:
                raise PayloadError(self._p(key), "required field is missing")
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise PayloadError(self._p(key), f"expected an ISO 8601 time, got {text[:80]!r}") from None
        try:
            # Trunk sends UTC ("...Z"); a time without an offset is read as UTC too.
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:30:00+01:00 is in year 0 in UTC
            moment = None
        if moment is None or not EARLIEST_EVENT_TIME <= moment <= self.received_at + LATEST_AFTER_RECEIPT:
            raise PayloadError(self._p(key), f"{text[:80]!r} is not a plausible event time")
        return moment

    def status(self, key: str) -> str:
        text = self.str(key, required=True, nonempty=True).strip().upper()
        if text not in STATUSES:
            raise PayloadError(self._p(key), f"expected one of {', '.join(STATUSES)}, got {text[:40]!r}")
        return text

    def str_list(self, key: str) -> tuple[str, ...]:
        value = self._get(key, False)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise PayloadError(self._p(key), f"expected a list of strings, got {json_type(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise PayloadError(f"{self._p(key)}[{i}]", f"expected a string, got {json_type(item)}")
        return tuple(itertools.islice((_owner(item) for item in value if item.strip()), OWNERS_MAX))

    def list(self, key: str) -> list[Any]:
        value = self._get(key, False)
        if value is None:
            return []
        if not isinstance(value, list):
            raise PayloadError(self._p(key), f"expected a list, got {json_type(value)}")
        return value


def _owner(text: str) -> str:
    """An owner as stored: storable, stripped, and short enough that its case-folded key
    (which can be longer: "ß" folds to "ss") fits the key column too."""
    name = bounded(storable_text(text.strip()), OWNER_MAX)
    while len(name.casefold()) > OWNER_MAX:
        name = bounded(name, len(name) - 1)
    return name


def _free_json(value: Any, path: str) -> Any:
    """Free-form JSON (`evidence`) as it can be stored and shown: text made storable, NaN
    and infinities (which JSON columns and API responses cannot carry) kept as their
    names. Deeper than EVIDENCE_MAX_DEPTH is an error naming the field."""

    def clean(item: Any, depth: int) -> Any:
        if isinstance(item, list | dict) and depth > EVIDENCE_MAX_DEPTH:
            raise PayloadError(path, f"nested deeper than {EVIDENCE_MAX_DEPTH} levels")
        if isinstance(item, str):
            return storable_text(item)
        if isinstance(item, float) and not math.isfinite(item):
            return str(item).replace("inf", "Infinity").replace("nan", "NaN")
        if isinstance(item, list):
            return [clean(x, depth + 1) for x in item]
        if isinstance(item, dict):
            return {storable_text(k): clean(v, depth + 1) for k, v in item.items()}
        return item

    return clean(value, 1)


def _describe_number(value: Any) -> str:
    """A number for an error message: a huge integer by its size, not its 400 digits."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"an integer of {len(str(abs(value)))} digits"
    return repr(value) if isinstance(value, int | float) and not isinstance(value, bool) else json_type(value)


def json_type(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


# ---------------------------------------------------------------- shared objects


def _repository(r: PayloadReader | None) -> RepositoryRef | None:
    if r is None:
        return None
    trunk_id = r.uuid("id", required=False)
    html_url = r.str("html_url", limit=REPOSITORY_URL_MAX)
    if trunk_id is None and not html_url:
        return None
    return RepositoryRef(trunk_id=trunk_id, html_url=html_url)


def _test_case(t: PayloadReader, *, repository: RepositoryRef | None) -> TestCaseRef:
    # v1 says `quarantine` and `test_suite` where v2 says `quarantined` and `parent`.
    quarantined = t.bool("quarantined")
    if quarantined is None:
        quarantined = t.bool("quarantine")
    nested_repository = _repository(t.obj("repository", required=False))
    return TestCaseRef(
        id=t.uuid("id"),
        name=t.str("name", required=True, nonempty=True, limit=NAME_MAX),
        classname=t.str("classname", limit=NAME_MAX) if "classname" in t.data else None,
        parent=t.str("parent", limit=NAME_MAX) or t.str("test_suite", limit=NAME_MAX),
        file_path=t.str("file_path", limit=NAME_MAX),
        html_url=t.str("html_url", limit=NAME_MAX),
        codeowners=t.str_list("codeowners"),
        quarantined=quarantined,
        variant=t.str("variant", limit=VARIANT_MAX),
        # A share of runs: 0..1 (Trunk's 0.12 is 12%).
        failure_rate_last_7d=t.number("failure_rate_last_7d", lo=0, hi=1),
        pull_requests_impacted_last_7d=t.integer("pull_requests_impacted_last_7d"),
        repository=repository or nested_repository,
    )


def _common(p: PayloadReader) -> TestCaseRef:
    return _test_case(p.obj("test_case"), repository=_repository(p.obj("repository", required=False)))


# ---------------------------------------------------------------- one parser per type


def monitor_status_changed(p: PayloadReader, event_type: str) -> MonitorStatusChanged:
    monitor = p.obj("monitor")
    status = monitor.str("status", required=True, nonempty=True).strip().lower()
    if status not in MONITOR_STATUSES:
        raise PayloadError("monitor.status", f"expected active or resolved, got {status[:40]!r}")
    return MonitorStatusChanged(
        event_type=event_type,
        occurred_at=p.time("timestamp"),
        test_case=_common(p),
        monitor_id=monitor.uuid("id"),
        monitor_type=monitor.str("type", required=True, nonempty=True, limit=MONITOR_TYPE_MAX),
        monitor_status=status,
        evidence=_free_json(p.data.get("evidence"), "evidence"),
    )


def status_changed_v2(p: PayloadReader, event_type: str) -> StatusChanged:
    trigger = p.obj("triggered_by", required=False)
    return StatusChanged(
        event_type=event_type,
        occurred_at=p.time("timestamp"),
        test_case=_common(p),
        previous_status=p.status("previous_status"),
        new_status=p.status("new_status"),
        monitor_id=trigger.uuid("monitor_id", required=False) if trigger else None,
        monitor_type=trigger.str("monitor_type", limit=MONITOR_TYPE_MAX) if trigger else "",
        monitor_status=trigger.str("monitor_status", limit=MONITOR_STATUS_MAX).lower() if trigger else "",
    )


def status_changed_v1(p: PayloadReader, event_type: str) -> StatusChanged:
    change = p.obj("status_change")
    current = change.obj("current_status")
    return StatusChanged(
        event_type=event_type,
        # v1 carries its event time inside the change, not at the top level.
        occurred_at=current.time("timestamp"),
        test_case=_common(p),
        previous_status=change.status("previous_status"),
        new_status=current.status("value"),
        reason=current.str("reason"),
    )


def investigation_completed(p: PayloadReader, event_type: str) -> InvestigationCompleted:
    facts = []
    for i, raw in enumerate(p.list("facts")[:FACTS_MAX]):
        f = p.child(raw, f"facts[{i}]")
        facts.append(
            Fact(
                fact_type=f.str("fact_type", required=True, nonempty=True, limit=FACT_TYPE_MAX),
                content=f.str("content"),
                confidence=f.number("confidence", lo=0, hi=1),
            )
        )
    return InvestigationCompleted(
        event_type=event_type,
        occurred_at=p.time("created_at"),
        test_case=_common(p),
        investigation_id=p.uuid("investigation_id"),
        confidence=p.number("confidence", required=True, lo=0, hi=1),
        markdown_summary=p.str("markdown_summary"),
        failure_message=p.str("failure_message"),
        facts=tuple(facts),
    )


def quarantining_setting_changed(p: PayloadReader, event_type: str) -> QuarantineSettingChanged:
    change = p.obj("quarantine_setting_changed")
    actor = change.obj("actor", required=False)
    # The event time sits inside the change; a top-level `timestamp` is the fallback.
    occurred_at = change.time("timestamp", required=False) or p.time("timestamp", required=False)
    if occurred_at is None:
        raise PayloadError("quarantine_setting_changed.timestamp", "required field is missing")
    return QuarantineSettingChanged(
        event_type=event_type,
        occurred_at=occurred_at,
        test_case=_common(p),
        actor_email=actor.str("email", limit=ACTOR_MAX) if actor else "",
        actor_name=actor.str("full_name", limit=ACTOR_MAX) if actor else "",
        previous_setting=change.str("previous_quarantining_setting", limit=SETTING_MAX),
        updated_setting=change.str("updated_quarantining_setting", limit=SETTING_MAX),
        reason=change.str("reason"),
    )


V1_STATUS_CHANGED = "test_case.status_changed"


def event_type_of(payload: Any) -> str:
    """The payload's type, or the legacy v1 type recognised by its shape, or ""."""
    if not isinstance(payload, dict):
        return ""
    declared = payload.get("type")
    if isinstance(declared, str) and declared:
        return storable_text(declared)[:255]
    # Some v1 senders omit `type`; a `status_change` object identifies that shape.
    if isinstance(payload.get("status_change"), dict) and "test_case" in payload:
        return V1_STATUS_CHANGED
    return ""


def event_time_of(payload: Any, *, received_at: datetime) -> datetime | None:
    """Best-effort event time for a payload that did not parse (for the delivery row):
    the places the known shapes keep it, first plausible one wins."""
    if not isinstance(payload, dict):
        return None
    for path in (
        ("timestamp",),
        ("created_at",),
        ("status_change", "current_status", "timestamp"),  # v1
        ("quarantine_setting_changed", "timestamp"),
    ):
        value: Any = payload
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str):
            try:
                return PayloadReader({"t": value}, received_at=received_at).time("t")
            except PayloadError:
                continue
    return None
