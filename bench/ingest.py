"""Ingest benchmark: the production server (bin/start-server: gunicorn gthread) on
PostgreSQL, driven over loopback by validly signed, unique deliveries (a realistic mix
from the demo generator, ~1% redeliveries, ~3% out of order). The same load runs, in the
same run, against the floor endpoint (store the raw body only), the receiver as
docker-compose.yml runs it (deferred projection: bin/start-projector beside it, and the
time it takes to apply the burst), and the receiver projecting inline.

    python -m bench.ingest [--duration 60] [--concurrency 12] [--workers 3 --threads 4]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import threading
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from svix.webhooks import Webhook

from bench.common import (
    BENCH_SECRET,
    percentiles,
    production_server,
    projector_process,
    recreate_database,
    table,
    write_result,
)
from events import demo
from events.trunk import parsing


def build_plan(messages_needed: int, seed: int = 11) -> list[tuple[str, str, str]]:
    """(svix id, event type, body) in delivery order, enough for the run."""
    tests = max(50, messages_needed // 11)
    messages = demo.generate_history(now=datetime.now(UTC), tests=tests, days=90, seed=seed, repositories=4)
    plan = demo.plan_deliveries(messages, seed=seed, id_prefix=f"msg_bench_{int(time.time())}")
    return [(msg_id, parsing.event_type_of(p), json.dumps(p)) for msg_id, p in plan[:messages_needed]]


def drive(base: str, path: str, plan, *, duration: float, concurrency: int) -> dict:
    """Send the plan's deliveries from `concurrency` keep-alive connections for at most
    `duration` seconds (or until the plan is used up). Bounded in count and time."""
    host, port = base.removeprefix("http://").split(":")
    webhook = Webhook(BENCH_SECRET)
    cursor = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    acked: list[tuple[str, str]] = []
    stop_at = time.monotonic() + duration

    def worker():
        conn = http.client.HTTPConnection(host, int(port), timeout=15)
        local_lat, local_status, local_acked = [], {}, []
        while time.monotonic() < stop_at:
            with lock:
                i = next(cursor)
            if i >= len(plan):
                break
            msg_id, event_type, body = plan[i]
            now = datetime.now(UTC)
            headers = {
                "Content-Type": "application/json",
                "svix-id": msg_id,
                "svix-timestamp": str(int(now.timestamp())),
                "svix-signature": webhook.sign(msg_id, now, body),
            }
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=body.encode(), headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=15)
            local_lat.append((time.perf_counter() - started) * 1000)
            local_status[status] = local_status.get(status, 0) + 1
            if 200 <= status < 300:
                local_acked.append((msg_id, event_type))
        conn.close()
        with lock:
            latencies.extend(local_lat)
            acked.extend(local_acked)
            for k, v in local_status.items():
                statuses[k] = statuses.get(k, 0) + v

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "per_second": round(ok / elapsed, 1),
        "latency_ms": percentiles(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": len(latencies) - ok,
        "_acked": acked,
    }


def peak_rss_mb(server_pid: int) -> float:
    """Peak resident memory (VmHWM) of the largest gunicorn worker."""
    peaks = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(server_pid) and "VmHWM" in fields:
            peaks.append(int(fields["VmHWM"].split()[0]) / 1024)
    return round(max(peaks, default=0.0), 1)


def verify(database: str, acked: list[tuple[str, str]]) -> dict:
    """Every acknowledged delivery has its row; nothing was applied twice."""
    unique = {msg_id: event_type for msg_id, event_type in acked}
    duplicates = len(acked) - len(unique)
    with psycopg.connect(database) as conn:
        rows = conn.execute("SELECT count(*), coalesce(sum(redeliveries), 0) FROM events_delivery").fetchone()
        outcomes = dict(
            conn.execute("SELECT outcome, count(*) FROM events_delivery GROUP BY outcome").fetchall()
        )
        history = sum(
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
            for t in ("events_statuschange", "events_monitorevent", "events_quarantinechange")
        )
        investigations = conn.execute("SELECT count(*) FROM events_investigation").fetchone()[0]
    expected_history = sum(1 for t in unique.values() if t != "test_case.investigation_completed")
    return {
        "acknowledged_unique": len(unique),
        "acknowledged_redeliveries": duplicates,
        "delivery_rows": rows[0],
        "redeliveries_counted": int(rows[1]),
        "outcomes": outcomes,
        "history_rows": history + investigations,
        "expected_history_rows": expected_history
        + sum(1 for t in unique.values() if t == "test_case.investigation_completed"),
        "lost": max(0, len(unique) - rows[0]),
        "applied_twice": max(0, history + investigations - len(unique)),
    }


def pending(database: str) -> int:
    with psycopg.connect(database) as conn:
        return conn.execute("SELECT count(*) FROM events_delivery WHERE outcome = 'pending'").fetchone()[0]


def wait_until_projected(database: str, *, timeout: float = 1800) -> float:
    """Seconds until the projector has applied every pending delivery."""
    started = time.monotonic()
    while pending(database):
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"the projector did not catch up within {timeout} s")
        time.sleep(0.2)
    return round(time.monotonic() - started, 1)


def process_peak_rss_mb(pid: int) -> float:
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    except OSError:
        return 0.0
    return round(int(fields.get("VmHWM", "0 kB").split()[0]) / 1024, 1)


# (name, path, server environment). "receiver" is the production set-up of
# docker-compose.yml: the receiver stores, a projector applies (events/projection/projector.py).
# "receiver_default" is bin/start-server alone, as `make demo` and a single container run
# it: deferred projection with its own projector beside gunicorn.
TARGETS = (
    ("floor", "/bench/floor/", {"FLAKYBOARD_PROJECTOR": "off"}),
    (
        "receiver",
        "/webhooks/trunk/",
        {"FLAKYBOARD_DEFERRED_PROJECTION": "true", "FLAKYBOARD_PROJECTOR": "off"},
    ),
    ("receiver_default", "/webhooks/trunk/", {}),
    ("receiver_inline", "/webhooks/trunk/", {"FLAKYBOARD_DEFERRED_PROJECTION": "false"}),
)
# The targets whose deliveries are applied after the answer, and those that run the
# benchmark's own projector process (bin/start-projector, as docker-compose does).
DEFERRED = {"receiver", "receiver_default"}
OWN_PROJECTOR = {"receiver"}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--max-requests", type=int, default=150_000)
    parser.add_argument("--name", default="ingest")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    plan = build_plan(args.max_requests)
    print(f"plan: {len(plan)} signed-at-send deliveries")
    runs = {}
    for target, path, env in TARGETS:
        database = recreate_database(f"flakyboard_bench_{target}")
        with psycopg.connect(database, autocommit=True) as conn:
            from bench.floor import CREATE

            conn.execute(CREATE)
        deferred = target in DEFERRED
        with (
            production_server(
                database, workers=args.workers, threads=args.threads, settings="bench.settings", **env
            ) as (base, proc),
            projector_process(database, settings="bench.settings", **env)
            if target in OWN_PROJECTOR
            else nullcontext() as projector,
        ):
            drive(base, path, plan[:200], duration=10, concurrency=args.concurrency)  # warm-up
            if deferred:
                wait_until_projected(database)  # start the run with an empty queue
            run = drive(base, path, plan[200:], duration=args.duration, concurrency=args.concurrency)
            run["peak_worker_rss_mb"] = peak_rss_mb(proc.pid)
            if deferred:
                # Projection lags a burst; when does the dashboard show all of it?
                run["pending_at_end"] = pending(database)
                run["caught_up_after_s"] = wait_until_projected(database)
                applied = len({m for m, _ in run["_acked"]})
                run["projected_per_second"] = round(applied / (run["seconds"] + run["caught_up_after_s"]), 1)
                if projector is not None:
                    run["projector_peak_rss_mb"] = process_peak_rss_mb(projector.pid)
        acked = run.pop("_acked")
        if target != "floor":
            run["check"] = verify(database, [(m, t) for m, t, _ in plan[:200]] + acked)
        runs[target] = run
    floor = runs["floor"]["per_second"]
    result = {
        "settings": vars(args),
        "runs": runs,
        "receiver_to_floor": round(runs["receiver"]["per_second"] / floor, 3) if floor else 0,
        "receiver_inline_to_floor": round(runs["receiver_inline"]["per_second"] / floor, 3) if floor else 0,
        "receiver_default_to_floor": round(runs["receiver_default"]["per_second"] / floor, 3) if floor else 0,
    }
    rows = [
        {
            "target": name,
            "deliveries/s": r["per_second"],
            "p50 ms": r["latency_ms"]["p50"],
            "p95 ms": r["latency_ms"]["p95"],
            "p99 ms": r["latency_ms"]["p99"],
            "errors": r["errors"],
            "peak RSS MB": r["peak_worker_rss_mb"],
        }
        for name, r in runs.items()
    ]
    print(table(rows, list(rows[0])))
    deferred = runs["receiver"]
    print(
        f"receiver / floor throughput: {result['receiver_to_floor']:.0%} (docker-compose), "
        f"{result['receiver_default_to_floor']:.0%} (bin/start-server alone, the default), "
        f"{result['receiver_inline_to_floor']:.0%} (inline projection)"
    )
    print(
        f"projector: {deferred['pending_at_end']} pending when the burst ended, all applied "
        f"{deferred['caught_up_after_s']} s later ({deferred['projected_per_second']}/s over the run; "
        f"peak RSS {deferred['projector_peak_rss_mb']} MB)"
    )
    default = runs["receiver_default"]
    print(
        f"projector beside gunicorn (default): {default['pending_at_end']} pending when the burst ended, "
        f"all applied {default['caught_up_after_s']} s later"
    )
    for name in ("receiver", "receiver_default", "receiver_inline"):
        print(f"check ({name}):", json.dumps(runs[name]["check"]))
    print("results:", write_result(args.name, result))
    return result


if __name__ == "__main__":
    main()
