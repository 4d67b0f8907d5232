"""rebuild_projections throughput on a benchmark database (bench.scale builds them).

    python -m bench.rebuild S M

Replays every stored delivery into fresh projections (the command's own code path) and
reports events per second. Writes bench/results/rebuild-<size>.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import psycopg

from bench.common import ROOT, server_env, table, write_result
from bench.scale import ensure_built


def rebuild(size: str) -> dict:
    # Bring the schema up to date first (a data set built by an older version), or build
    # the data set again if its migration history is not today's.
    database = ensure_built(size)
    with psycopg.connect(database) as conn:
        deliveries = conn.execute("SELECT count(*) FROM events_delivery").fetchone()[0]
    started = time.monotonic()
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "rebuild_projections"],
        cwd=ROOT,
        env=server_env(database),
        check=True,
        capture_output=True,
    )
    seconds = time.monotonic() - started
    result = {
        "size": size,
        "deliveries": deliveries,
        "seconds": round(seconds, 1),
        "events_per_second": round(deliveries / seconds, 1),
    }
    write_result(f"rebuild-{size}", result)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="+")
    args = parser.parse_args(argv)
    rows = [rebuild(size) for size in args.sizes]
    print(table(rows, ["size", "deliveries", "seconds", "events_per_second"]))


if __name__ == "__main__":
    main()
