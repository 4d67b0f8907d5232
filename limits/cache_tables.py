"""The database cache tables (CACHES entries with DatabaseCache), created after migrate."""

from typing import Any

from django.core.management import call_command


def create_cache_tables(*, using: str = "default", verbosity: int = 1, **kwargs: Any) -> None:
    """post_migrate handler: `createcachetable` on the database just migrated.

    It creates only the tables that are missing, for every DatabaseCache alias, and does
    nothing when no cache uses the database."""
    call_command("createcachetable", database=using, verbosity=verbosity)
