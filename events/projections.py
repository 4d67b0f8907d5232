"""Apply typed events to the projected models: current state plus full history.

Order independence. Deliveries arrive late, twice and out of order (Svix is
at-least-once with best-effort ordering). Dedupe by svix id happens in `ingest`; here
every write of *current* state is guarded by the event time (`occurred_at`, Trunk's
clock, never our `received_at`), so a late, older event lands in history but never
overwrites newer state. Ties on event time are broken by the svix id, so the same set
of events gives the same state whatever the order (see tests/events/test_order_independence.py).

Each write is one statement where the database can decide (a guarded UPDATE, INSERT ...
ON CONFLICT DO NOTHING, or INSERT ... ON CONFLICT DO UPDATE ... WHERE <guard>): no
read-before-write and no nested transactions. The caller (`ingest`) runs `apply_event`
inside one transaction. The statements of the common paths are plain SQL (`events.sql`:
the ORM cost more CPU than the database did); rare paths (a late event, a renamed
repository, changed owners) stay in the ORM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from functools import cache
from typing import Any
from urllib.parse import urlparse

from django.db import connection
from django.db.models import Q
from django.db.models.functions import Greatest, Least

from . import parsing, rollups, sql
from .models import (
    Delivery,
    Investigation,
    InvestigationFact,
    Monitor,
    MonitorEvent,
    MonitorState,
    Owner,
    QuarantineChange,
    Repository,
    StatusChange,
    TestCase,
    TestCaseOwner,
)

REPOSITORY_NAME_MAX = Repository._meta.get_field("name").max_length


def _newer(time_field: str, key_field: str, at: datetime, key: str) -> Q:
    """Rows whose current value is older than the event (at, key): the only ones to update."""
    return (
        Q(**{f"{time_field}__isnull": True})
        | Q(**{f"{time_field}__lt": at})
        | Q(**{time_field: at, f"{key_field}__lt": key})
    )


def _newer_sql(model: type, time_field: str, key_field: str, *, event: str = "") -> str:
    """SQL twin of `_newer`: the stored (time, key) is older than the event's.

    The event's time and key are the parameters (at, at, key), or with `event="excluded"`
    the row an INSERT ... ON CONFLICT DO UPDATE proposed.
    """
    time, key = (f"{sql.table(model)}.{sql.column(model, name)}" for name in (time_field, key_field))
    at, at_key = (
        (f"excluded.{sql.column(model, name)}" for name in (time_field, key_field)) if event else ("%s", "%s")
    )
    return f"({time} IS NULL OR {time} < {at} OR ({time} = {at} AND {key} < {at_key}))"


def _repository_name(html_url: str) -> str:
    """owner/name from the URL's path, or the URL itself when it has none (or does not
    parse: "http://[" is a ValueError), cut to the column."""
    try:
        path = urlparse(html_url).path.strip("/")
    except ValueError:
        path = ""
    return parsing.bounded(path.removesuffix(".git") if path else html_url, REPOSITORY_NAME_MAX)


# A projector batch resolves its repositories first (create_entities): their ids, by
# reference as sent, for its deliveries.
_batch_repositories: ContextVar[dict | None] = ContextVar("batch_repositories", default=None)


def upsert_repository(ref: parsing.RepositoryRef | None) -> int | None:
    """The repository's id (`_upsert_repository`), or the one its projector batch
    resolved before (create_entities, repositories_resolved)."""
    resolved = _batch_repositories.get()
    if resolved is not None and ref in resolved:
        return resolved[ref]
    return _upsert_repository(ref)


def _upsert_repository(ref: parsing.RepositoryRef | None) -> int | None:
    """Find or create the repository: by Trunk id when sent (v2), else by URL (v1).
    Returns its id. The common case, a repository known as sent, is one SELECT.

    Creating one (rare) goes through its URL's slot, the URL-only row that the unique
    constraint `repository_url_only_unique` allows once per URL: a v1 delivery takes the
    slot, a v2 delivery takes it and gives it its Trunk id. Concurrent first deliveries of
    one repository, in either shape, then wait for each other on that one index entry and
    create one row (a creator that finds an older row after all drops its own slot)."""
    if ref is None:
        return None
    known = sql.fetch_one(f"SELECT {_known_repository_sql(ref)}", _known_repository_params(ref))
    if known is not None and known[0] is not None:
        return known[0]
    if ref.trunk_id is None:
        return _repository_by_url(ref.html_url)
    repo = Repository.objects.filter(trunk_id=ref.trunk_id).values_list("pk", "html_url").first()
    if repo is None:
        return _create_repository(ref.trunk_id, ref.html_url)
    if ref.html_url and repo[1] != ref.html_url:
        # Renamed repository: the id is stable, the URL follows the latest sender.
        Repository.objects.filter(pk=repo[0]).update(
            html_url=ref.html_url, name=_repository_name(ref.html_url)
        )
    return repo[0]


def _insert_url_slot(html_url: str) -> int | None:
    """INSERT the URL-only row of this URL unless it exists; its id when inserted. A
    concurrent transaction inserting the same URL waits here until the first commits."""
    row = sql.fetch_one(
        sql.insert_sql(Repository, ("trunk_id", "html_url", "name"), skip_existing=True, returning="id"),
        sql.adapt(Repository, {"trunk_id": None, "html_url": html_url, "name": _repository_name(html_url)}),
    )
    return row and row[0]


def _repository_by_url(html_url: str) -> int:
    """A repository named by URL only (v1): the oldest row with this URL, created first
    (through the slot) when there is none."""
    slot = _insert_url_slot(html_url)
    oldest = Repository.objects.filter(html_url=html_url).order_by("pk").values_list("pk", flat=True).first()
    if slot is not None and oldest != slot:
        Repository.objects.filter(pk=slot).delete()  # a v2 creator of this URL committed first
    return oldest


def _create_repository(trunk_id, html_url: str) -> int:
    """A repository first seen with its Trunk id: adopt the URL-only row of its URL (ours
    from the slot, or one a v1 payload created), else insert it with its id."""
    slot = _insert_url_slot(html_url) if html_url else None
    adopted = 0
    if html_url:
        # Unless a concurrent creator of this id committed first (then: drop our slot).
        adopted = sql.execute(
            _adopt_url_only_sql(), sql.adapt_many(Repository, "trunk_id", [trunk_id]) * 2 + [html_url]
        )
    if not adopted:
        Repository.objects.bulk_create(
            [Repository(trunk_id=trunk_id, html_url=html_url, name=_repository_name(html_url))],
            ignore_conflicts=True,
        )
        if slot is not None:
            Repository.objects.filter(pk=slot, trunk_id__isnull=True).delete()
    return Repository.objects.values_list("pk", flat=True).get(trunk_id=trunk_id)


@cache
def _adopt_url_only_sql() -> str:
    """UPDATE the oldest URL-only row of a URL to a Trunk id no row has yet.
    Parameters: trunk id, trunk id, URL."""
    t, col = sql.table(Repository), sql.column
    trunk, url, pk = col(Repository, "trunk_id"), col(Repository, "html_url"), col(Repository, "id")
    return (
        f"UPDATE {t} SET {trunk} = %s WHERE NOT EXISTS (SELECT 1 FROM {t} other WHERE other.{trunk} = %s)"
        f" AND {pk} = (SELECT {pk} FROM {t} slot WHERE slot.{url} = %s AND slot.{trunk} IS NULL"
        f" ORDER BY {pk} LIMIT 1)"
    )


def _known_repository_sql(ref: parsing.RepositoryRef | None) -> str:
    """A scalar subquery: the id of the repository `ref` names when it is stored as sent,
    by Trunk id and the same URL (v2), or by URL (v1: the oldest such row); else NULL
    (new, renamed, or known by URL only so far: `upsert_repository` decides those).
    Parameters: `_known_repository_params`."""
    if ref is None:
        return "NULL"
    return _known_repository_subquery(ref.trunk_id is not None, bool(ref.html_url))


def _known_repository_params(ref: parsing.RepositoryRef | None) -> list[Any]:
    if ref is None:
        return []
    if ref.trunk_id is None:
        return sql.adapt(Repository, {"html_url": ref.html_url})
    return sql.adapt(
        Repository, {"trunk_id": ref.trunk_id, **({"html_url": ref.html_url} if ref.html_url else {})}
    )


@cache
def _known_repository_subquery(by_trunk_id: bool, with_url: bool) -> str:
    col = sql.column
    select = f"SELECT {col(Repository, 'id')} FROM {sql.table(Repository)}"
    if not by_trunk_id:
        return f"({select} WHERE {col(Repository, 'html_url')} = %s ORDER BY {col(Repository, 'id')} LIMIT 1)"
    same_url = f" AND {col(Repository, 'html_url')} = %s" if with_url else ""
    return f"({select} WHERE {col(Repository, 'trunk_id')} = %s{same_url})"


def _owner_ids(codeowners: tuple[str, ...], at: datetime, respell: dict | None = None) -> list[int]:
    """Owner rows for these names; the spelling shown is the earliest by event time.

    Same event time: the smaller spelling wins, so the result is order-independent.
    Two statements in the common case; an UPDATE only when this event is earlier, made
    at the end of the transaction when `respell` (Stale.owner_names) is given.
    """
    by_key: dict[str, tuple[datetime, str]] = {}
    for name in codeowners:
        key = name.casefold()
        by_key[key] = min(by_key.get(key, (at, name)), (at, name))
    return _upsert_owners(by_key, respell)


def _upsert_owners(first_seen: dict[str, tuple[datetime, str]], respell: dict | None = None) -> list[int]:
    """Create the owners of these keys, key -> (event time, spelling) of the earliest
    event naming it here, in one statement in key order (LOCK ORDER); one stored with a
    later first event is re-spelled (rollups.respell_owners): at the end of the
    transaction with the shared rows when `respell` collects it, else now. Returns their
    ids, in key order."""
    if not first_seen:
        return []
    keys = sorted(first_seen)
    sql.insert_many(
        Owner,
        ("key", "name", "first_seen_at"),
        [(key, first_seen[key][1], first_seen[key][0]) for key in keys],
        skip_existing=True,
    )
    owners = _owners_by_key(keys)
    later = {}
    for _, key, name, first_seen_at in owners:
        if first_seen[key] < (_aware(first_seen_at), name):
            later[key] = first_seen[key]
    if respell is None:
        rollups.respell_owners(later)
    else:
        for key, seen in later.items():
            respell[key] = min(respell.get(key, seen), seen)
    return [pk for pk, *_ in owners]


def _owners_by_key(keys: list[str]) -> list[tuple[int, str, str, Any]]:
    """SELECT id, key, name, first_seen_at of the owners with these keys."""
    columns = ", ".join(sql.column(Owner, name) for name in ("id", "key", "name", "first_seen_at"))
    placeholders = ", ".join(["%s"] * len(keys))
    return sql.fetch_all(
        f"SELECT {columns} FROM {sql.table(Owner)} WHERE {sql.column(Owner, 'key')} IN ({placeholders})"
        f" ORDER BY {sql.column(Owner, 'key')}",  # updated in this order: key order (rollups: LOCK ORDER)
        sql.adapt_many(Owner, "key", keys),
    )


def _aware(value: datetime) -> datetime:
    """A datetime read by plain SQL: SQLite gives Django's naive UTC back as naive."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _link_owners(test_id, owner_ids: list[int], *, replace: bool) -> None:
    """Link the test to exactly these owners (`replace`: drop its other links first)."""
    if replace:
        TestCaseOwner.objects.filter(test_case_id=test_id).exclude(owner_id__in=owner_ids).delete()
    sql.insert_many(
        TestCaseOwner, ("test_case", "owner"), [(test_id, o) for o in owner_ids], skip_existing=True
    )
    # The owner rollups follow the test's owners: its refresh, with the other rollups
    # (upsert_test_case returns True), after every entity row (rollups: LOCK ORDER).


def test_case_fields(ref: parsing.TestCaseRef) -> tuple[dict[str, Any], dict[str, Any]]:
    """(attributes, separately guarded fields) of a test_case snapshot, as TestCase
    fields. The attributes move together; the others (`quarantined`, `classname`) only
    when the payload carries them, each with its own (time, key) guard."""
    attributes = {
        "name": ref.name,
        "parent": ref.parent,
        "file_path": ref.file_path,
        "html_url": ref.html_url,
        "variant": ref.variant,
        "codeowners": list(ref.codeowners),
        "failure_rate_last_7d": ref.failure_rate_last_7d,
        "pull_requests_impacted_last_7d": ref.pull_requests_impacted_last_7d,
    }
    separately_guarded = {
        name: value
        for name, value in (("quarantined", ref.quarantined), ("classname", ref.classname))
        if value is not None
    }
    return attributes, separately_guarded


def upsert_test_case(
    ref: parsing.TestCaseRef, *, at: datetime, key: str, respell: dict | None = None
) -> bool:
    """Create the test if new; take its attributes when this event is the newest.

    Returns whether the test's rollups must be recomputed: this event may be its earliest
    (it created the test or moved its first event time: the start of its first status
    interval, events.rollups), or its owner links changed (its owner rollups).

    The `test_case` object is a snapshot that Trunk sends whole with every event, so its
    attributes move together, guarded by `attributes_at`. Two fields may be missing from
    a payload (`quarantined` is optional; the v1 shape has no `classname`), so each has
    its own guard: its value comes from the newest event that carries it.
    """
    attributes, separately_guarded = test_case_fields(ref)
    guarded_values = {}
    for name, value in separately_guarded.items():
        guarded_values |= {name: value, f"{name}_at": at, f"{name}_event_key": key}
    # The newest event also wins the separate guards: every event moves attributes_at, so
    # theirs never run ahead of it. first_event_at is kept the earlier of the two.
    newest_values = {
        "attributes_at": at,
        "attributes_event_key": key,
        "last_event_at": at,
        **attributes,
        **guarded_values,
    }
    # 1. The common case, one UPDATE: a newer event about a known test, same owners, its
    # repository stored as sent (looked up inside the UPDATE). Anything else takes the
    # entity rows in the lock order first: repository, owners, then the test's row.
    repository = (_known_repository_sql(ref.repository), _known_repository_params(ref.repository))
    updated = _update_test_case(ref.id, newest_values, at, key, repository=repository, same_codeowners=True)
    if updated:
        return bool(updated[1])
    # The test's row before the repository and owners (the UPDATE above may have locked it
    # already while re-checking a row another delivery changed): deliveries about one test
    # wait for each other here, holding nothing they need from each other.
    lock_tests([ref.id])
    repository_id = upsert_repository(ref.repository)
    owner_ids = _owner_ids(ref.codeowners, at, respell)  # and their first-seen spelling
    # 2. A new test: this event creates it whole, then links its owners.
    created = TestCase(id=ref.id, first_event_at=at, repository_id=repository_id, **newest_values)
    if sql.insert_instance(created, skip_existing=True):
        _link_owners(ref.id, owner_ids, replace=False)
        return True
    # 3. A newer event with other owners or a repository not stored as sent, or this very
    # event applied again (reprocessing: its own (at, key) is stored already): the owner
    # links are rewritten.
    repository = ("%s", sql.adapt(TestCase, {"repository": repository_id}))
    updated = _update_test_case(ref.id, newest_values, at, key, repository=repository, same_codeowners=False)
    if updated:
        _link_owners(ref.id, owner_ids, replace=True)
        return True  # its owner rollups follow its owner links
    # 4. A late, older event: history only, plus what older events may still decide.
    test = TestCase.objects.filter(pk=ref.id)
    test.update(first_event_at=Least("first_event_at", at), last_event_at=Greatest("last_event_at", at))
    for name, value in separately_guarded.items():
        test.filter(_newer(f"{name}_at", f"{name}_event_key", at, key)).update(
            **{name: value, f"{name}_at": at, f"{name}_event_key": key}
        )
    return True  # late events are rare: let the rollups check (they write only what changed)


def lock_tests(test_ids) -> None:
    """Lock the rows of those of these tests that exist, in key order (PostgreSQL; SQLite
    has one writer at a time)."""
    if connection.vendor != "postgresql" or not test_ids:
        return
    ids = sorted(set(test_ids))
    sql.execute(
        f"SELECT 1 FROM {sql.table(TestCase)} WHERE {sql.column(TestCase, 'id')}"
        f" IN ({', '.join(['%s'] * len(ids))}) ORDER BY {sql.column(TestCase, 'id')} FOR NO KEY UPDATE",
        sql.adapt_many(TestCase, "id", ids),
    )


def _update_test_case(
    test_id,
    values: dict[str, Any],
    at: datetime,
    key: str,
    *,
    repository: tuple[str, list[Any]],
    same_codeowners: bool,
) -> tuple | None:
    """UPDATE the test to `values`, its repository to the SQL expression `repository`
    (text, parameters), and first_event_at to the earlier of it and `at`, when the event
    (at, key) is newer than its attributes.

    `same_codeowners`: only if its stored codeowners equal the event's (then its owner
    links are right already) and the repository expression is not NULL (stored as
    sent). Otherwise also when the stored attributes are this very event's. Returns (repository_id, 1 if `at` is now the test's first event time else 0)
    as updated, or None when the row was not updated.
    """
    test_id_p, at_p, key_p = sql.adapt(
        TestCase, {"id": test_id, "attributes_at": at, "attributes_event_key": key}
    )
    repository_sql, repository_params = repository
    params = [*sql.adapt(TestCase, values), *repository_params, at_p, at_p, test_id_p, at_p, at_p, key_p]
    if same_codeowners:
        params += sql.adapt(TestCase, {"codeowners": values["codeowners"]})
        if repository_sql != "NULL":
            params += repository_params
    else:
        params += [at_p, key_p]
    params.append(at_p)  # RETURNING: is this event now the test's earliest?
    return sql.fetch_one(_update_test_case_sql(tuple(values), repository_sql, same_codeowners), params)


@cache
def _update_test_case_sql(names: tuple[str, ...], repository_sql: str, same_codeowners: bool) -> str:
    """The text of `_update_test_case`, per set of columns and repository expression."""
    col = sql.column
    first = col(TestCase, "first_event_at")
    sets = ", ".join(f"{col(TestCase, name)} = %s" for name in names)
    condition = _newer_sql(TestCase, "attributes_at", "attributes_event_key")
    if same_codeowners:
        condition += f" AND {col(TestCase, 'codeowners')} = %s"
        if repository_sql != "NULL":  # and the repository is stored as sent
            condition += f" AND {repository_sql} IS NOT NULL"
    else:
        condition = (
            f"({condition} OR ({col(TestCase, 'attributes_at')} = %s"
            f" AND {col(TestCase, 'attributes_event_key')} = %s))"
        )
    return (
        f"UPDATE {sql.table(TestCase)} SET {sets}, {col(TestCase, 'repository')} = {repository_sql}, "
        f"{first} = CASE WHEN {first} < %s THEN {first} ELSE %s END "
        f"WHERE {col(TestCase, 'id')} = %s AND {condition} "
        f"RETURNING {col(TestCase, 'repository')}, CASE WHEN {first} = %s THEN 1 ELSE 0 END"
    )


# ---------------------------------------------------------------- one handler per type


def apply_status_changed(event: parsing.StatusChanged, delivery: Delivery) -> None:
    sql.insert(
        StatusChange,
        {
            "delivery": delivery.pk,
            "test_case": event.test_case.id,
            "occurred_at": event.occurred_at,
            "previous_status": event.previous_status,
            "new_status": event.new_status,
            "monitor_id": event.monitor_id,
            "monitor_type": event.monitor_type,
            "monitor_status": event.monitor_status,
            "reason": event.reason,
        },
    )
    _update_status(event.test_case.id, event.new_status, event.occurred_at, delivery.svix_id)


def _update_status(test_id, status: str, at: datetime, key: str) -> None:
    """UPDATE the test's status when the event (at, key) is newer than the current one."""
    status_p, at_p, key_p, test_id_p = sql.adapt(
        TestCase, {"status": status, "status_since": at, "status_event_key": key, "id": test_id}
    )
    sql.execute(_update_status_sql(), [status_p, at_p, key_p, test_id_p, at_p, at_p, key_p])


@cache
def _update_status_sql() -> str:
    col = sql.column
    return (
        f"UPDATE {sql.table(TestCase)} SET {col(TestCase, 'status')} = %s, "
        f"{col(TestCase, 'status_since')} = %s, {col(TestCase, 'status_event_key')} = %s "
        f"WHERE {col(TestCase, 'id')} = %s AND {_newer_sql(TestCase, 'status_since', 'status_event_key')}"
    )


def apply_monitor_status_changed(event: parsing.MonitorStatusChanged, delivery: Delivery) -> None:
    # Its Monitor row: created by apply_event, before the test's row (LOCK ORDER).
    sql.insert(
        MonitorEvent,
        {
            "delivery": delivery.pk,
            "monitor": event.monitor_id,
            "test_case": event.test_case.id,
            "occurred_at": event.occurred_at,
            "status": event.monitor_status,
            "evidence": event.evidence,
        },
    )
    state = {
        "monitor": event.monitor_id,
        "test_case": event.test_case.id,
        "status": event.monitor_status,
        "since": event.occurred_at,
        "event_key": delivery.svix_id,
    }
    sql.execute(_upsert_monitor_state_sql(), sql.adapt(MonitorState, state))


@cache
def _upsert_monitor_state_sql() -> str:
    """INSERT the (monitor, test) state, or take it over when this event is newer."""
    col = sql.column
    taken = ", ".join(
        f"{col(MonitorState, n)} = excluded.{col(MonitorState, n)}" for n in ("status", "since", "event_key")
    )
    return (
        sql.insert_sql(MonitorState, ("monitor", "test_case", "status", "since", "event_key"))
        + f" ON CONFLICT ({col(MonitorState, 'monitor')}, {col(MonitorState, 'test_case')})"
        + f" DO UPDATE SET {taken} WHERE {_newer_sql(MonitorState, 'since', 'event_key', event='excluded')}"
    )


def apply_investigation_completed(event: parsing.InvestigationCompleted, delivery: Delivery) -> set[date]:
    """Store the investigation and its facts. Returns the UTC days whose investigation
    rollups this changed: the investigation's day, and the day it had before when it
    replaced another delivery's copy (none when the other copy is kept).

    Trunk's investigation id is unique. Should two deliveries (two svix ids) carry the
    same investigation, the one with the smaller svix id is kept, whatever the order.
    """
    fields = {
        "delivery": delivery,
        "test_case_id": event.test_case.id,
        "occurred_at": event.occurred_at,
        "confidence": event.confidence,
        "markdown_summary": event.markdown_summary,
        "failure_message": event.failure_message,
    }
    days = {rollups.day_of(event.occurred_at)}
    created = sql.insert_instance(Investigation(id=event.investigation_id, **fields), skip_existing=True)
    if not created:
        kept_delivery_id, kept_svix_id, kept_at = (
            Investigation.objects.filter(pk=event.investigation_id)
            .values_list("delivery_id", "delivery__svix_id", "occurred_at")
            .get()
        )
        if kept_delivery_id != delivery.pk:
            if kept_svix_id < delivery.svix_id:
                return set()
            days.add(rollups.day_of(kept_at))  # the replaced copy may be dated another day
            InvestigationFact.objects.filter(investigation_id=event.investigation_id).delete()
            Investigation.objects.filter(pk=event.investigation_id).update(**fields)
    sql.insert_many(
        InvestigationFact,
        ("investigation", "position", "fact_type", "content", "confidence"),
        [
            (event.investigation_id, i, fact.fact_type, fact.content, fact.confidence)
            for i, fact in enumerate(event.facts)
        ],
    )
    return days


def apply_quarantine_setting_changed(event: parsing.QuarantineSettingChanged, delivery: Delivery) -> None:
    sql.insert(
        QuarantineChange,
        {
            "delivery": delivery.pk,
            "test_case": event.test_case.id,
            "occurred_at": event.occurred_at,
            "actor_email": event.actor_email,
            "actor_name": event.actor_name,
            "previous_setting": event.previous_setting,
            "updated_setting": event.updated_setting,
            "reason": event.reason,
        },
    )


# Each returns None, but the investigation handler: the days whose rollups it changed.
HANDLERS: dict[type[parsing.Event], Callable[..., set[date] | None]] = {
    parsing.StatusChanged: apply_status_changed,
    parsing.MonitorStatusChanged: apply_monitor_status_changed,
    parsing.InvestigationCompleted: apply_investigation_completed,
    parsing.QuarantineSettingChanged: apply_quarantine_setting_changed,
}


def apply_event(event: parsing.Event, delivery: Delivery, *, stale: rollups.Stale | None = None) -> None:
    """Project one event. Every event carries its test case, whose attributes it updates.

    Then the rollups: a status change, or the test's earliest event (which moves the start
    of its first status interval), recomputes the test's status rollups; a monitor event
    its pair's intervals; an investigation the days it was written to or moved from; a
    quarantined flag, if it changed the test's, its owner rollups. These read the test's
    other events, so they rely on `upsert_test_case` writing the test row on every path:
    that row lock makes concurrent deliveries about one test run one after the other
    (tests/events/test_concurrency.py).

    `stale`: collect what to recompute there instead, for the caller to refresh once per
    test and pair after a batch of events in the same transaction (events.projector).
    """
    test_id = event.test_case.id
    if isinstance(event, parsing.MonitorStatusChanged):
        # Entity rows before the test's row, the monitor first (events/rollups.py, LOCK
        # ORDER); upsert_test_case then finds or creates the repository and owners.
        _insert_monitors([(event.monitor_id, event.monitor_type)])
    now = stale is None
    stale = stale if stale is not None else rollups.Stale()
    earliest = upsert_test_case(
        event.test_case, at=event.occurred_at, key=delivery.svix_id, respell=stale.owner_names
    )
    # The investigation handler returns the days whose investigation rollups it changed.
    changed_days = HANDLERS[type(event)](event, delivery)
    if changed_days:
        stale.days.update(changed_days)
    if isinstance(event, parsing.MonitorStatusChanged):
        stale.pairs.add((event.monitor_id, test_id))
    if earliest or isinstance(event, parsing.StatusChanged):
        stale.tests.add(test_id)
    if event.test_case.quarantined is not None:
        stale.quarantine_sent.add(test_id)
    if now:
        stale.refresh()


def _insert_monitors(monitors: Sequence[tuple[Any, str]]) -> None:
    """Create the monitors (id, type) not stored yet, in one statement, in id order; the
    first type seen is kept."""
    sql.insert_many(Monitor, ("id", "type"), sorted(monitors), skip_existing=True)


def create_entities(events: Sequence[parsing.Event], stale: rollups.Stale) -> dict:
    """For a projector batch (several deliveries in one transaction): find or create the
    entity rows its events name before applying them, each table at once and in key
    order, in the LOCK ORDER (events/rollups.py): monitors (one statement, the first
    type seen), the rows of its tests that exist (one statement, key order),
    repositories (in arrival order, so that a renamed repository's URL follows the
    latest sender, as one by one), owners (one statement, the earliest spelling of the
    batch; re-spelled with the shared rows, when `stale` is refreshed). Applying the events inside `repositories_resolved` (sorted by
    test) then creates the new tests in key order and takes only rows under those.

    Returns the repositories' ids by reference as sent, for `repositories_resolved`."""
    resolved: dict = {}
    owners: dict[str, tuple[datetime, str]] = {}
    monitors: dict[Any, str] = {}
    for event in events:
        if isinstance(event, parsing.MonitorStatusChanged):
            monitors.setdefault(event.monitor_id, event.monitor_type)
    _insert_monitors(list(monitors.items()))
    lock_tests([event.test_case.id for event in events])
    for event in events:
        ref = event.test_case.repository
        if ref is not None:
            resolved[ref] = _upsert_repository(ref)
        for name in event.test_case.codeowners:
            key = name.casefold()
            owners[key] = min(owners.get(key, (event.occurred_at, name)), (event.occurred_at, name))
    _upsert_owners(owners, stale.owner_names)
    return resolved


@contextmanager
def repositories_resolved(resolved: dict) -> Iterator[None]:
    """Inside, upsert_repository answers from `resolved` (create_entities) for the
    references it holds, without writing: the batch's repositories are settled."""
    token = _batch_repositories.set(resolved)
    try:
        yield
    finally:
        _batch_repositories.reset(token)
