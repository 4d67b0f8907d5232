"""Build the benchmark data sets on PostgreSQL.

    python -m bench.scale S|M|L [--through-receiver]

Each size is its own database (flakyboard_bench_s, _m, _l), filled by `seed_demo --bulk`:
the demo generator's signed deliveries stored with COPY (received a second after their
event, so the delivery log spans the history), then projected by `rebuild_projections`'
bulk path. tests/events/test_bulk.py proves this gives the same rows as delivering each
through the receiver, which `--through-receiver` does instead (about 130 deliveries/s).
Writes bench/results/scale-<size>.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench.common import (
    ROOT,
    database_url,
    migrate,
    recreate_database,
    schema_is_current,
    server_env,
    table,
    write_result,
)

# tests, days: the demo generator gives about 11-12 events per test over 120 days, about
# 21 over two years.
SIZES = {
    "XS": {"tests": 60, "days": 30},  # bench-smoke: proves the scripts run
    "S": {"tests": 500, "days": 120},  # about 5,800 events
    "M": {"tests": 5000, "days": 120},  # about 58,000 events
    "L": {"tests": 50000, "days": 730},  # about 1,070,000 events: the 1M-event target size
}


def database_name(size: str) -> str:
    return f"flakyboard_bench_{size.lower()}"


def build(size: str, *, through_receiver: bool = False) -> dict:
    spec = SIZES[size]
    database = recreate_database(database_name(size))
    env = server_env(database)
    started = time.monotonic()
    migrate(database_name(size))
    seeded = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "manage.py",
            "seed_demo",
            "--tests",
            str(spec["tests"]),
            "--days",
            str(spec["days"]),
            *([] if through_receiver else ["--bulk"]),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    import psycopg

    # What a DBA does after a bulk load (autovacuum would, later): set the visibility map
    # for index-only scans and refresh statistics. Not counted in the build time.
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")

    with psycopg.connect(database) as conn:
        counts = {
            name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # noqa: S608
            for name in (
                "events_delivery",
                "events_testcase",
                "events_statuschange",
                "events_monitorevent",
                "events_investigation",
                "events_quarantinechange",
            )
        }
    result = {
        "size": size,
        **spec,
        "path": "receiver" if through_receiver else "bulk",
        "seconds": round(seconds, 1),
        "rows": counts,
        "deliveries_per_second": round(counts["events_delivery"] / seconds, 1),
        "seed_output": seeded.stdout.strip().splitlines()[:1],
    }
    write_result(f"scale-{size}", result)
    return result


def ensure_built(size: str) -> str:
    """The size's database at today's schema; returns its URL. A database built by
    migrations that today's files continue is migrated; one that is missing, or was
    built by other migrations (older code: bench.common, "Which migrations built a bench
    database"), is built anew, as `bench.scale <size>` does."""
    name = database_name(size)
    current = schema_is_current(name)
    if current:
        return migrate(name)
    if size not in SIZES:
        raise SystemExit(f"{name}: no such database, and {size} is not a size bench.scale knows")
    why = "does not exist" if current is None else "was built by other migrations (older code)"
    print(f"{name} {why}: building it first (bench.scale {size})", file=sys.stderr, flush=True)
    build(size)
    return database_url(name)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="+", choices=list(SIZES))
    parser.add_argument(
        "--through-receiver", action="store_true", help="deliver each through the receiver view (slow)"
    )
    args = parser.parse_args(argv)
    rows = []
    for size in args.sizes:
        r = build(size, through_receiver=args.through_receiver)
        rows.append(
            {
                "size": size,
                "tests": r["rows"]["events_testcase"],
                "deliveries": r["rows"]["events_delivery"],
                "seconds": r["seconds"],
                "deliveries/s": r["deliveries_per_second"],
            }
        )
    print(table(rows, list(rows[0])))


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flakyboard.settings")
    main()
