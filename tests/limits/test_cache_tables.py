"""The throttle cache table is created by `migrate`, wherever the app runs."""

import sqlite3

from tests.test_settings import manage, output, project_env


def test_migrate_creates_the_throttle_cache_table_and_again_after_a_rename(tmp_path):
    env = project_env(tmp_path, DJANGO_DEBUG="true")
    result = manage(env, "migrate", "--noinput")
    assert result.returncode == 0, output(result)
    renamed = {**env, "FLAKYBOARD_THROTTLE_CACHE_URL": "dbcache://renamed_throttle_cache"}
    # Already migrated: no migration runs, the new table is created all the same.
    result = manage(renamed, "migrate", "--noinput")
    assert result.returncode == 0, output(result)
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"flakyboard_throttle_cache", "renamed_throttle_cache"} <= tables
