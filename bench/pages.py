"""Server time of every dashboard page, the main admin lists and every API list and stats
endpoint, on the benchmark databases built by bench.scale.

    python -m bench.pages S M [--requests 30] [--rounds 3]

Each request runs in-process through Django's full stack (middleware, auth, views,
templates; no network), after warm-up: p50 and p95 over N requests, and the query
count of one request. Default period (30d) and "all" for the pages that take one.
Writes bench/results/pages-<size>.json.

On a shared machine whose speed drifts from minute to minute, `--rounds N` measures the
sizes in turn N times (S, L, S, L, ...) and keeps, per endpoint, the round with the
lowest p50: each size's best, so that a slow minute during one size's turn does not
show up as growth.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from urllib.parse import quote

from bench.common import ROOT, database_url, percentiles, server_env, table, write_result
from bench.scale import database_name, ensure_built

PERIODS = ("30d", "all")


def endpoints(test_id: str, owner_key: str, delivery_id: int) -> list[tuple[str, str, bool]]:
    """(group, path, takes a period)."""
    return [
        ("page", "/", True),
        ("page", "/tests/", False),
        ("page", "/tests/?status=FLAKY&sort=-failure_rate", False),
        ("page", "/tests/?sort=-impact", False),
        ("page", f"/tests/{test_id}/", False),
        ("page", "/codeowners/", True),
        ("page", f"/codeowners/{owner_key}/", True),
        ("page", "/codeowners/?sort=triage", True),
        ("page", "/monitors/", True),
        ("page", "/investigations/", True),
        ("page", "/deliveries/", False),
        ("page", "/quarantine/", False),
        ("page", "/quarantine/?ready=1", False),
        ("page", f"/deliveries/{delivery_id}/", False),
        ("admin", "/admin/events/testcase/", False),
        ("admin", "/admin/events/testcase/?status__exact=FLAKY", False),
        ("admin", "/admin/events/delivery/", False),
        ("admin", "/admin/events/statuschange/", False),
        ("admin", "/admin/events/triageevent/", False),
        ("api-list", "/api/v1/test-cases/", False),
        ("api-list", "/api/v1/test-cases/?status=FLAKY&sort=-status_since", False),
        ("api-list", "/api/v1/test-cases/?sort=-impact", False),
        ("api-list", "/api/v1/repositories/", False),
        ("api-list", "/api/v1/status-changes/", False),
        ("api-list", "/api/v1/monitor-events/", False),
        ("api-list", "/api/v1/monitors/", False),
        ("api-list", "/api/v1/investigations/", False),
        ("api-list", "/api/v1/quarantine-changes/", False),
        ("api-list", "/api/v1/deliveries/", False),
        ("api-list", "/api/v1/triage-events/", False),
        ("api-list", f"/api/v1/test-cases/{test_id}/triage-history/", False),
        ("api-stats", "/api/v1/stats/summary/", True),
        ("api-stats", "/api/v1/stats/targets/", True),
        ("api-stats", "/api/v1/stats/status-trend/", True),
        ("api-stats", "/api/v1/stats/codeowners/", True),
        ("api-stats", "/api/v1/stats/monitors/", True),
        ("api-stats", "/api/v1/stats/confidence/", True),
        ("api-stats", "/api/v1/stats/quarantine/", False),
        ("api-stats", "/api/v1/stats/calibration/", True),
        ("api-stats", "/api/v1/stats/fixes/", True),
        ("api-stats", f"/api/v1/stats/fixes/?owner={quote(owner_key, safe='')}", True),
    ]


def worker(size: str, requests: int, only: str | None = None) -> list[dict]:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import Count
    from django.test import Client

    from events.models import Delivery, Owner, TestCase

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    busiest = (
        TestCase.objects.annotate(n=Count("monitor_events"))
        .order_by("-n")
        .values_list("pk", flat=True)
        .first()
    )
    owner = Owner.objects.annotate(n=Count("test_links")).order_by("-n").values_list("key", flat=True).first()
    delivery = Delivery.objects.order_by("-id").values_list("pk", flat=True).first()
    rows = []
    for group, path, takes_period in endpoints(str(busiest), owner, delivery):
        for period in PERIODS if takes_period else (None,):
            url = path if period is None else f"{path}{'&' if '?' in path else '?'}period={period}"
            if only and only not in url:
                continue
            for _ in range(3):  # warm-up
                response = client.get(url)
                assert response.status_code == 200, (url, response.status_code)
            # Count with an execute wrapper: the test client's request_started signal
            # resets connection.queries, so CaptureQueriesContext would see nothing.
            executed: list[str] = []

            def count(execute, sql, *args, executed=executed):
                executed.append(sql)
                return execute(sql, *args)

            with connection.execute_wrapper(count):
                client.get(url)
            samples = []
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get(url)
                if hasattr(response, "streaming_content"):
                    b"".join(response.streaming_content)
                samples.append((time.perf_counter() - started) * 1000)
            stats = percentiles(samples)
            rows.append(
                {
                    "group": group,
                    "url": url,
                    "p50_ms": stats["p50"],
                    "p95_ms": stats["p95"],
                    "mean_ms": round(statistics.fmean(samples), 2),
                    "queries": len(executed),
                }
            )
    # Peak resident memory of this process, which served every page above.
    import resource

    rows.append(
        {
            "group": "memory",
            "url": "peak RSS of the serving process (MB)",
            "p50_ms": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "p95_ms": "",
            "mean_ms": "",
            "queries": "",
        }
    )
    return rows


def _best(a: dict, b: dict) -> dict:
    """Of two rounds' rows for one endpoint, the one with the lower p50 (the memory row:
    the higher peak)."""
    pick = max if a["group"] == "memory" else min
    return pick(a, b, key=lambda row: row["p50_ms"])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", default=["S", "M"])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure the sizes in turn N times; keep the best"
    )
    parser.add_argument("--only", help="only the URLs that contain this text")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.requests, args.only)))
        return
    for size in args.sizes:
        ensure_built(size)  # today's schema (migrated, or built again if its history differs)
    results: dict[str, list[dict]] = {}
    for size in [size for _ in range(args.rounds) for size in args.sizes]:
        env = server_env(
            database_url(database_name(size)),
            DJANGO_SETTINGS_MODULE="flakyboard.settings",
            DJANGO_ALLOWED_HOSTS="testserver,127.0.0.1",
        )
        out = subprocess.run(  # noqa: S603
            [
                *(sys.executable, "-m", "bench.pages", "--worker", size, "--requests", str(args.requests)),
                *(("--only", args.only) if args.only else ()),
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        rows = json.loads(out.stdout.strip().splitlines()[-1])
        if size in results:  # a later round
            rows = [_best(a, b) for a, b in zip(results[size], rows, strict=True)]
        results[size] = rows
    for size, rows in results.items():
        write_result(
            f"pages-{size}",
            {"size": size, "requests": args.requests, "rounds": args.rounds, "endpoints": rows},
        )
        print(f"\n== {size}")
        print(table(rows, ["group", "url", "p50_ms", "p95_ms", "queries"]))
    if len(results) >= 2 and len(results[args.sizes[0]]) > 1:
        small, large = results[args.sizes[0]], results[args.sizes[-1]]
        growth = [
            {
                "url": a["url"],
                f"{args.sizes[0]} p50": a["p50_ms"],
                f"{args.sizes[-1]} p50": b["p50_ms"],
                "growth": round(b["p50_ms"] / a["p50_ms"], 2) if a["p50_ms"] else None,
            }
            for a, b in zip(small, large, strict=True)
            if a["group"] != "memory"
        ]
        write_result("pages-growth", {"sizes": args.sizes, "growth": growth})
        print(f"\n== growth {args.sizes[0]} -> {args.sizes[-1]}")
        print(table(growth, list(growth[0])))


if __name__ == "__main__":
    main()
