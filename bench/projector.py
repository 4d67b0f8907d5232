"""Projector throughput: how fast `project_pending` applies a backlog on PostgreSQL.

    python -m bench.projector [--deliveries 30000] [--compare REV ...]

The deliveries are `bench.ingest`'s mix (the demo generator's events, ~1% redeliveries
dropped, ~3% out of order), stored as `pending` as the receiver stores them with deferred
projection. The first half is applied untimed (it creates most tests: the warm state of a
running installation); then the second half, Svix's backlog after an outage, is stored
at once and applied by one `manage.py project_pending` (its default batches of 1,000, flat out: no
pause for a receiver). The figure is that half's deliveries over the command's time,
less the time the command takes with nothing pending (Django's start-up).

`--projectors 1 2 4` runs the backlog with that many projector processes at once (each
row: the wall time until the last exits, and how many stopped on a database error such as
a deadlock). `--compare REV` also runs the same deliveries through the code of another git revision
(checked out in a temporary worktree), one after the other in the same run: the before
and after of a change. `--owners N` gives every test one of N owners (a monorepo whose
tests share a few large owners: every batch then updates the same owner rollups).
`--cold` stores the whole backlog at once into an empty database (no warm half): every
test is new, so every batch claims its new tests (events.projection.apply.claim_new_tests),
the worst case for PostgreSQL's shared lock table; each row then reports the most advisory
locks held at once (`peak_claims`, sampled every 20 ms from pg_locks).
Writes bench/results/projector.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench.common import ROOT, database_url, recreate_database, server_env, table, write_result

DATABASE = "flakyboard_bench_projector"


def build_deliveries(count: int, *, owners: int | None, seed: int = 11) -> list[tuple[str, str, str]]:
    """(svix id, event type, body) in arrival order: bench.ingest's plan."""
    from bench.ingest import build_plan

    # A redelivery (same svix id) is only counted by the receiver: keep the first.
    seen: set[str] = set()
    plan = [d for d in build_plan(count, seed=seed) if not (d[0] in seen or seen.add(d[0]))]
    if not owners:
        return plan
    rewritten = []
    for msg_id, event_type, body in plan:
        payload = json.loads(body)
        test = (payload.get(event_type) or {}).get("test_case") if isinstance(payload, dict) else None
        if isinstance(test, dict) and test.get("id"):
            test["codeowners"] = [f"@monorepo/team-{int(test['id'][:8], 16) % owners}"]
        rewritten.append((msg_id, event_type, json.dumps(payload)))
    return rewritten


def store_pending(url: str, deliveries: list[tuple[str, str, str]]) -> None:
    """Store deliveries as the receiver does with deferred projection (one COPY)."""
    from events.trunk.registry import parse_event  # noqa: PLC0415 - the parent needs no Django set-up

    now = datetime.now(UTC)
    columns = "svix_id, event_type, body, headers, user_agent, received_at, occurred_at, outcome, error, redeliveries"
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cursor,
        cursor.copy(f"COPY events_delivery ({columns}) FROM STDIN") as copy,
    ):
        for msg_id, event_type, body in deliveries:
            event = parse_event(json.loads(body), received_at=now)
            copy.write_row(
                (msg_id, event_type, body, "{}", "bench", now, event.occurred_at, "pending", "", 0)
            )


def manage(code: Path, url: str, *args: str) -> float:
    """Run manage.py of the code at `code`; returns the seconds it took."""
    started = time.monotonic()
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args], cwd=code, env=server_env(url), check=True, capture_output=True
    )
    return time.monotonic() - started


def drain(code: Path, url: str, projectors: int) -> tuple[float, list[str]]:
    """`projectors` processes of `manage.py project_pending` started at once on the backlog:
    (seconds until the last one exits, how many of them stopped on a database error such as
    a deadlock). Whatever such a stop left pending is applied afterwards, untimed."""
    started = time.monotonic()
    processes = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "project_pending"],
            cwd=code,
            env=server_env(url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(projectors)
    ]
    failures = []
    for process in processes:
        _, stderr = process.communicate()
        if process.returncode != 0:
            failures.append((stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1][:300])
    seconds = time.monotonic() - started
    if failures:
        manage(code, url, "project_pending")
    return seconds, failures


class PeakClaims:
    """The most advisory locks held at once while it runs (sampled from pg_locks)."""

    def __init__(self, url: str):
        self.url, self.peak, self.done = url, 0, threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.done.wait(0.02):
                held = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
                self.peak = max(self.peak, held[0] if held else 0)

    def __enter__(self) -> PeakClaims:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()


def measure(
    code: Path, label: str, deliveries: list[tuple[str, str, str]], *, projectors: int = 1, cold: bool = False
) -> dict:
    url = recreate_database(DATABASE)
    manage(code, url, "migrate", "-v0")
    half = 0 if cold else len(deliveries) // 2
    if half:
        store_pending(url, deliveries[:half])
        manage(code, url, "project_pending")  # warm-up: the tests exist, as on a running installation
    startup = min(manage(code, url, "project_pending") for _ in range(2))  # nothing pending
    store_pending(url, deliveries[half:])
    with PeakClaims(url) as claims:
        elapsed, failures = drain(code, url, projectors)
    seconds = elapsed - startup
    with psycopg.connect(url) as conn:
        outcomes = dict(conn.execute("SELECT outcome, count(*) FROM events_delivery GROUP BY 1").fetchall())
        tests = conn.execute("SELECT count(*) FROM events_testcase").fetchone()[0]
    applied = len(deliveries) - half
    return {
        "code": label,
        "projectors": projectors,
        "stopped_on_error": len(failures),
        "errors": failures,
        "deliveries": applied,
        "tests": tests,
        "seconds": round(seconds, 2),
        "deliveries_per_second": round(applied / seconds),
        "peak_claims": claims.peak,
        "outcomes": outcomes,
    }


def worktree_of(rev: str, into: Path) -> Path:
    subprocess.run(["git", "worktree", "add", "--detach", str(into), rev], cwd=ROOT, check=True)  # noqa: S603,S607
    return into


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=30000)
    parser.add_argument("--owners", type=int, default=None, help="every test owned by one of N owners")
    parser.add_argument("--compare", nargs="*", default=[], metavar="REV", help="also run these revisions")
    parser.add_argument("--name", default="projector")
    parser.add_argument(
        "--projectors",
        nargs="*",
        type=int,
        default=[1],
        metavar="N",
        help="also N projectors at once (this checkout)",
    )
    parser.add_argument("--cold", action="store_true", help="no warm half: every test is new")
    args = parser.parse_args(argv)
    deliveries = build_deliveries(args.deliveries, owners=args.owners)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rev in args.compare:
            tree = worktree_of(rev, Path(tmp) / rev.replace("/", "_"))
            try:
                rows.append(measure(tree, rev, deliveries, cold=args.cold))
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)  # noqa: S603,S607
        for projectors in args.projectors:
            rows.append(measure(ROOT, "this checkout", deliveries, projectors=projectors, cold=args.cold))
    result = {"owners": args.owners, "cold": args.cold, "runs": rows, "database": database_url(DATABASE)}
    write_result(args.name, result)
    print(
        table(
            rows,
            [
                "code",
                "projectors",
                "stopped_on_error",
                "deliveries",
                "tests",
                "seconds",
                "deliveries_per_second",
                "peak_claims",
            ],
        )
    )
    return result


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flakyboard.settings")
    main()
