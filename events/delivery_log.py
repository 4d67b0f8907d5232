"""The delivery log is append-only, in the database too: on PostgreSQL a trigger (migration
0004_delivery_append_only) refuses to DELETE a delivery or to UPDATE what it received
(svix id, body, raw body, headers, user agent, received time). The application never
does either; it updates only what processing decides and the redelivery count.

`delivery_changes_allowed()` lifts it for one block. The application does so only to prune
old bodies (events/retention.py, `manage.py prune_deliveries`); the demo's re-run deletes
its own earlier deliveries with it, and tests use it to set up deliveries received long ago.

It sets the session variable the trigger checks, `flakyboard.allow_delivery_changes`,
for the block's transaction only (`set_config(..., true)`, as `SET LOCAL`): it never
outlives the transaction and is off again after the block. On SQLite it does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections, transaction

# The name the trigger reads (written out in the migration, which imports no live code).
ALLOW_CHANGES = "flakyboard.allow_delivery_changes"


@contextmanager
def delivery_changes_allowed(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Inside a transaction (a savepoint if one is open): deliveries may be deleted or
    rewritten. On an exception the block rolls back, the setting with it."""
    connection = connections[using]
    with transaction.atomic(using=using):
        if connection.vendor != "postgresql":
            yield
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, 'on', true)", [ALLOW_CHANGES])
        yield
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, 'off', true)", [ALLOW_CHANGES])
