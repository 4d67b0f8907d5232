"""Entity rows: repositories, owners and monitors, found or created in the database.

These rows are shared between tests, so they are resolved in the database, not folded
in memory: concurrent transactions (the receiver's requests, several projectors) create
each one once, in the LOCK ORDER (events/rollups/): monitors first (one statement, id
order), then the batch's existing test rows (`events.projection.apply` locks and loads them), then
repositories, then owners (one statement, key order). The rebuild resolves them through
the same functions, so there is one rule for each.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlparse

from django.db.models import Model

from events import sql
from events.models import Monitor, Owner, Repository
from events.trunk import parsing, reader


def _max_length(model: type[Model], name: str) -> int:
    length = sql.concrete_field(model, name).max_length
    if length is None:
        raise TypeError(f"{model.__name__}.{name} has no max_length")
    return length


REPOSITORY_NAME_MAX = _max_length(Repository, "name")


def repository_name(html_url: str) -> str:
    """owner/name from the URL's path, or the URL itself when it has none (or does not
    parse: "http://[" is a ValueError), cut to the column."""
    try:
        path = urlparse(html_url).path.strip("/")
    except ValueError:
        path = ""
    return reader.bounded(path.removesuffix(".git") if path else html_url, REPOSITORY_NAME_MAX)


def upsert_repository(ref: parsing.RepositoryRef | None) -> int | None:
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
            html_url=ref.html_url, name=repository_name(ref.html_url)
        )
    return repo[0]


def _insert_url_slot(html_url: str) -> int | None:
    """INSERT the URL-only row of this URL unless it exists; its id when inserted. A
    concurrent transaction inserting the same URL waits here until the first commits."""
    row = sql.fetch_one(
        sql.insert_sql(Repository, ("trunk_id", "html_url", "name"), skip_existing=True, returning="id"),
        sql.adapt(Repository, {"trunk_id": None, "html_url": html_url, "name": repository_name(html_url)}),
    )
    return None if row is None else row[0]


def _repository_by_url(html_url: str) -> int | None:
    """A repository named by URL only (v1): the oldest row with this URL, created first
    (through the slot) when there is none."""
    slot = _insert_url_slot(html_url)
    oldest = Repository.objects.filter(html_url=html_url).order_by("pk").values_list("pk", flat=True).first()
    if slot is not None and oldest != slot:
        Repository.objects.filter(pk=slot).delete()  # a v2 creator of this URL committed first
    return oldest


def _create_repository(trunk_id: uuid.UUID, html_url: str) -> int:
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
            [Repository(trunk_id=trunk_id, html_url=html_url, name=repository_name(html_url))],
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


def upsert_owners(first_seen: dict[str, tuple[datetime, str]], *, respell: dict) -> dict[str, int]:
    """Create the owners of these keys, key -> (event time, spelling) of the earliest
    event naming it here, in key order (LOCK ORDER). One stored with a later first event
    is re-spelled at the end of the transaction, with the shared rows
    (rollups.respell_owners): collected in `respell`. Returns their ids by key."""
    keys = sorted(first_seen)
    ids: dict[str, int] = {}
    for start in range(0, len(keys), OWNERS_PER_STATEMENT):
        chunk = keys[start : start + OWNERS_PER_STATEMENT]
        sql.insert_many(
            Owner,
            ("key", "name", "first_seen_at"),
            [(key, first_seen[key][1], first_seen[key][0]) for key in chunk],
            skip_existing=True,
        )
        for pk, key, name, first_seen_at in _owners_by_key(chunk):
            ids[key] = pk
            if first_seen[key] < (_aware(first_seen_at), name):
                respell[key] = min(respell.get(key, first_seen[key]), first_seen[key])
    return ids


# Bound parameters per statement stay well under the databases' limits (SQLite 32,766).
OWNERS_PER_STATEMENT = 2000


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


def insert_monitors(monitors: Sequence[tuple[Any, str]]) -> None:
    """Create the monitors (id, type) not stored yet, in one statement, in id order; the
    first type seen is kept."""
    sql.insert_many(Monitor, ("id", "type"), sorted(monitors), skip_existing=True)


class RepositoryResolver:
    """`upsert_repository`, remembered: a batch or a rebuild names a few repositories in
    thousands of events. A remembered answer stays right until a repository is created,
    adopted or renamed, which only a call for another reference can do: each call forgets
    the answers it may have changed (references to the same Trunk id, or to a URL that
    repository had or now has)."""

    def __init__(self) -> None:
        self.ids: dict[parsing.RepositoryRef, int | None] = {}
        self.url_of: dict[Any, str] = {}  # Trunk id -> its URL as last resolved

    def __call__(self, ref: parsing.RepositoryRef | None) -> int | None:
        if ref is None:
            return None
        if ref in self.ids:
            return self.ids[ref]
        pk = upsert_repository(ref)
        urls = {ref.html_url}
        if ref.trunk_id is not None:
            urls.add(self.url_of.get(ref.trunk_id, ref.html_url))
            if ref.html_url:
                self.url_of[ref.trunk_id] = ref.html_url
        self.ids = {
            known: known_pk
            for known, known_pk in self.ids.items()
            if known.html_url not in urls and (known.trunk_id is None or known.trunk_id != ref.trunk_id)
        }
        self.ids[ref] = pk
        return pk
