"""Load held: deliveries and readers at once on a large data set.

    python -m bench.mixed [--size L] [--duration 60] [--senders 12] [--readers 8]

The production server as it starts by default (bin/start-server: gunicorn, 3 gthread
workers x 4 threads, deferred projection with its projector beside it) on the size's
benchmark database (bench.scale builds it if needed). For `--duration` seconds, `--senders`
connections send unique, validly signed deliveries (bench.ingest's mix) while `--readers`
connections read dashboard pages and API endpoints in turn (a public dashboard, the API
with a token; the API throttle off: the readers model many users). Reports the receiver's
and the pages' latency percentiles and errors, every path's (slowest first), and how long the
projector took to apply what arrived. Targets (issue 17): receiver p99 < 100 ms, page p99
< 1 s, 0 errors. Writes bench/results/mixed-<size>.json.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from urllib.parse import quote

import psycopg

from bench.common import (
    ROOT,
    free_port,
    percentiles,
    production_server,
    server_env,
    table,
    wait_for_health,
    write_result,
)
from bench.ingest import build_plan, drive, pending, wait_until_projected
from bench.scale import ensure_built


def reader_paths(database: str) -> list[str]:
    with psycopg.connect(database) as conn:
        test_id = conn.execute(
            "SELECT test_case_id FROM events_statuschange GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()[0]
        owner = conn.execute(
            "SELECT o.key FROM events_owner o JOIN events_testcaseowner l ON l.owner_id = o.id "
            "GROUP BY o.key ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()[0]
    return [
        "/",
        "/?period=all",
        "/tests/",
        "/tests/?status=FLAKY&sort=-failure_rate",
        "/tests/?sort=-impact",
        f"/tests/{test_id}/",
        "/codeowners/",
        f"/codeowners/{quote(owner, safe='')}/",
        "/monitors/",
        "/investigations/",
        "/quarantine/",
        "/digest/",
        "/api/v1/test-cases/",
        "/api/v1/test-cases/?status=FLAKY",
        "/api/v1/status-changes/",
        "/api/v1/stats/summary/",
        "/api/v1/stats/codeowners/",
        "/api/v1/stats/fixes/?period=all",
    ]


def api_token(database: str) -> str:
    script = (
        "from django.contrib.auth import get_user_model; from rest_framework.authtoken.models import Token; "
        "u, _ = get_user_model().objects.get_or_create(username='bench-reader'); "
        "print(Token.objects.get_or_create(user=u)[0].key)"
    )
    out = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=server_env(database),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip().splitlines()[-1]


def read(base: str, paths: list[str], token: str, *, duration: float, readers: int) -> dict:
    host, port = base.removeprefix("http://").split(":")
    stop_at = time.monotonic() + duration
    lock = threading.Lock()
    latencies: list[float] = []
    by_path: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    turn = itertools.count()

    def reader() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        mine: list[tuple[str, float, int]] = []
        while time.monotonic() < stop_at:
            with lock:
                path = paths[next(turn) % len(paths)]
            headers = {"Authorization": f"Token {token}"} if path.startswith("/api/") else {}
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
            mine.append((path, (time.perf_counter() - started) * 1000, status))
        conn.close()
        with lock:
            for path, ms, status in mine:
                latencies.append(ms)
                by_path.setdefault(path, []).append(ms)
                if status != 200:
                    errors[f"{status} {path}"] = errors.get(f"{status} {path}", 0) + 1

    threads = [threading.Thread(target=reader) for _ in range(readers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    slowest = sorted(
        ({"path": p, **percentiles(ms), "requests": len(ms)} for p, ms in by_path.items()),
        key=lambda row: -row["p99"],
    )
    return {
        "requests": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        "latency_ms": percentiles(latencies),
        "errors": sum(errors.values()),
        "error_detail": errors,
        "slowest": slowest,  # every path, slowest first
    }


def read_in_own_process(*args, **kwargs) -> Callable[[], dict]:
    """Start `read` in a forked process; returns the function that waits for its result."""
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)

    def child() -> None:
        sending.send(read(*args, **kwargs))

    process = context.Process(target=child, daemon=True)
    process.start()
    sending.close()

    def result() -> dict:
        try:
            return receiving.recv()
        finally:
            process.join()

    return result


SETUPS = {
    "one-pool": "bin/start-server with one gunicorn for everything (PORT only)",
    "receiver-pool": "bin/start-server with RECEIVER_PORT: the receiver's own gunicorn, the pages' at WEB_NICE",
}


def run_setup(database: str, token: str, paths: list[str], setup: str, args) -> dict:
    """One set-up of the default server: `--duration` s of senders and readers at once."""
    env = {"FLAKYBOARD_PUBLIC_DASHBOARD": "true", "FLAKYBOARD_API_THROTTLE_USER": "off"}
    env.update(item.split("=", 1) for item in args.env)
    receiver_port = free_port() if setup == "receiver-pool" else None
    if receiver_port:
        env["RECEIVER_BIND"] = f"127.0.0.1:{receiver_port}"
    plan = build_plan(args.max_requests, seed=int(time.time()) % 1000)
    vacuum(database)
    with production_server(database, settings="bench.settings", **env) as (base, server):
        receiver_base = f"http://127.0.0.1:{receiver_port}" if receiver_port else base
        wait_for_health(receiver_base, server)
        # Warm-up: every page once, and a few deliveries.
        read(base, paths, token, duration=5, readers=2)
        drive(receiver_base, "/webhooks/trunk/", plan[:100], duration=5, concurrency=2)
        wait_until_projected(database)
        results: dict[str, dict] = {}

        def send() -> None:
            results["receiver"] = drive(
                receiver_base,
                "/webhooks/trunk/",
                plan[100:],
                duration=args.duration,
                concurrency=args.senders,
            )

        # The readers in a process of their own, started before the senders' threads: in
        # one interpreter the 12 senders' signing and sockets held the GIL while a reader's
        # response waited to be read, which counted in the pages' latency.
        readers = read_in_own_process(base, paths, token, duration=args.duration, readers=args.readers)
        sender = threading.Thread(target=send)
        sender.start()
        results["pages"] = readers()
        sender.join()
        results["receiver"].pop("_acked")
        results["receiver"]["pending_at_end"] = pending(database)
        results["receiver"]["caught_up_after_s"] = wait_until_projected(database)
    receiver, pages = results["receiver"], results["pages"]
    log = server.log_path.read_text(errors="replace").splitlines()
    return {
        "receiver": receiver,
        "pages": pages,
        "server_errors": [line for line in log if "ERROR" in line or "Error" in line][:20],
        "server_log": str(server.log_path),
        "targets_met": receiver["latency_ms"]["p99"] < 100
        and pages["latency_ms"]["p99"] < 1000
        and receiver["errors"] == 0
        and pages["errors"] == 0,
    }


def report(outcome: dict) -> None:
    receiver, pages = outcome["receiver"], outcome["pages"]
    rows = [
        {
            "load": name,
            "requests/s": r["per_second"],
            "p50 ms": r["latency_ms"]["p50"],
            "p95 ms": r["latency_ms"]["p95"],
            "p99 ms": r["latency_ms"]["p99"],
            "errors": r["errors"],
        }
        for name, r in (("receiver", receiver), ("pages and API", pages))
    ]
    print(table(rows, list(rows[0])))
    print(table(pages["slowest"], ["path", "p50", "p95", "p99", "requests"]))
    print(
        f"projector: {receiver['pending_at_end']} pending at the end, all applied "
        f"{receiver['caught_up_after_s']} s later; targets met: {outcome['targets_met']}",
        flush=True,
    )
    if outcome["server_errors"]:
        print(f"server errors ({outcome['server_log']}):", *outcome["server_errors"][:5], sep="\n  ")


def vacuum(database: str) -> None:
    """VACUUM ANALYZE first, as autovacuum would have after the previous run's burst on a
    production server (this machine's PostgreSQL runs with autovacuum off, its CI
    setting): without it each run reads the dead row versions and the stale statistics
    the earlier runs left (the projector updates every delivery and test it applies),
    and set-ups measured one after the other are not comparable."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def main(argv=None) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="L")
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--senders", type=int, default=12)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--max-requests", type=int, default=150_000)
    parser.add_argument("--setups", nargs="+", choices=list(SETUPS), default=list(SETUPS))
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="passed to bin/start-server (repeat)"
    )
    args = parser.parse_args(argv)

    database = ensure_built(args.size)
    token = api_token(database)
    paths = reader_paths(database)
    result: dict = {"settings": vars(args), "setups": {}}
    for setup in args.setups:
        print(f"== {setup}: {SETUPS[setup]}", flush=True)
        outcome = run_setup(database, token, paths, setup, args)
        result["setups"][setup] = outcome
        report(outcome)
    # The target is for the production set-up: the receiver pool of its own.
    result["targets_met"] = {name: r["targets_met"] for name, r in result["setups"].items()}
    print("results:", write_result(f"mixed-{args.size}", result))
    return result


if __name__ == "__main__":
    main()
