"""Reading one Trunk payload safely: typed access to its fields with the dotted path of
each in errors, text made storable and bounded, numbers and times checked.

The parsers (events.trunk.parsing) read every key through `PayloadReader`; the limits
here are the columns the values are stored in (tests/events check them against the
models).
"""

from __future__ import annotations

import builtins
import itertools
import math
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, overload

# Plausible event times (../shared/METRICS.md): so no figure reaches into year 1 or the future.
from events.metrics import EARLIEST_EVENT_TIME, LATEST_AFTER_RECEIPT

STATUSES = ("HEALTHY", "FLAKY", "BROKEN")
MONITOR_STATUSES = ("active", "resolved")


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


# ---------------------------------------------------------------- field readers


class PayloadReader:
    """Typed access to one JSON object, with the dotted path for error messages.

    Its readers are named after the JSON types they return (`str`, `bool`, `list`), so
    annotations in this class spell the built-in types as `builtins.str` and so on. A
    reader called with `required=True` never returns None (the overloads say so).
    """

    def __init__(self, data: Any, path: str = "", *, received_at: datetime):
        if not isinstance(data, dict):
            raise PayloadError(path or "(body)", f"expected an object, got {json_type(data)}")
        self.data = data
        self.path = path
        self.received_at = received_at  # bounds the plausible event times

    def _p(self, key: builtins.str) -> builtins.str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: builtins.str, required: builtins.bool) -> Any:
        value = self.data.get(key)
        if value is None and required:
            raise PayloadError(self._p(key), "required field is missing")
        return value

    @overload
    def obj(self, key: builtins.str, *, required: Literal[True] = ...) -> PayloadReader: ...
    @overload
    def obj(self, key: builtins.str, *, required: builtins.bool) -> PayloadReader | None: ...
    def obj(self, key: builtins.str, *, required: builtins.bool = True) -> PayloadReader | None:
        value = self._get(key, required)
        return None if value is None else self.child(value, self._p(key))

    def child(self, data: Any, path: builtins.str) -> PayloadReader:
        return PayloadReader(data, path, received_at=self.received_at)

    def str(
        self,
        key: builtins.str,
        *,
        required: builtins.bool = False,
        nonempty: builtins.bool = False,
        limit: int | None = None,
    ) -> builtins.str:
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

    @overload
    def uuid(self, key: builtins.str, *, required: Literal[True] = ...) -> uuid.UUID: ...
    @overload
    def uuid(self, key: builtins.str, *, required: builtins.bool) -> uuid.UUID | None: ...
    def uuid(self, key: builtins.str, *, required: builtins.bool = True) -> uuid.UUID | None:
        text = self.str(key, required=required)
        if not text and not required:
            return None
        try:
            return uuid.UUID(text)
        except ValueError:
            raise PayloadError(self._p(key), f"expected a UUID, got {text[:80]!r}") from None

    def bool(self, key: builtins.str) -> builtins.bool | None:
        value = self._get(key, False)
        if value is not None and not isinstance(value, bool):
            raise PayloadError(self._p(key), f"expected true or false, got {json_type(value)}")
        return value

    @overload
    def number(
        self, key: builtins.str, *, required: Literal[True], lo: float | None = ..., hi: float | None = ...
    ) -> float: ...
    @overload
    def number(
        self,
        key: builtins.str,
        *,
        required: builtins.bool = ...,
        lo: float | None = ...,
        hi: float | None = ...,
    ) -> float | None: ...
    def number(
        self,
        key: builtins.str,
        *,
        required: builtins.bool = False,
        lo: float | None = None,
        hi: float | None = None,
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

    def integer(self, key: builtins.str, *, lo: int = 0, hi: int = COUNT_MAX) -> int | None:
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

    @overload
    def time(self, key: builtins.str, *, required: Literal[True] = ...) -> datetime: ...
    @overload
    def time(self, key: builtins.str, *, required: builtins.bool) -> datetime | None: ...
    def time(self, key: builtins.str, *, required: builtins.bool = True) -> datetime | None:
        text = self.str(key, required=required)
        if not text:
            if required:
                raise PayloadError(self._p(key), "required field is missing")
            return None
        moment: datetime | None
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

    def status(self, key: builtins.str) -> builtins.str:
        text = self.str(key, required=True, nonempty=True).strip().upper()
        if text not in STATUSES:
            raise PayloadError(self._p(key), f"expected one of {', '.join(STATUSES)}, got {text[:40]!r}")
        return text

    def str_list(self, key: builtins.str) -> tuple[builtins.str, ...]:
        value = self._get(key, False)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise PayloadError(self._p(key), f"expected a list of strings, got {json_type(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise PayloadError(f"{self._p(key)}[{i}]", f"expected a string, got {json_type(item)}")
        return tuple(itertools.islice((_owner(item) for item in value if item.strip()), OWNERS_MAX))

    def list(self, key: builtins.str) -> builtins.list[Any]:
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


def free_json(value: Any, path: str) -> Any:
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
