"""Shared helpers of the benchmarks: the bench database, a production server, timing stats,
result files. Every script prints a table and writes bench/results/<name>.json."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BENCH_SECRET = "whsec_YmVuY2htYXJrLXNlY3JldC1mb3ItZmxha3lib2FyZA=="
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def database_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def recreate_database(name: str) -> str:
    """Drop and create a PostgreSQL database for one benchmark size; returns its URL."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(name)


# Which migrations built a bench database. A database left by older code (this machine
# keeps them between runs) may hold a migration history that today's files cannot
# continue: the migrations were squashed once (0001-0015 into a new 0001...), and a
# re-squash would reuse the same names with other contents. `migrate` would then take
# the recorded names as applied and leave the schema wrong. So each database records
# the hash of every events migration it was migrated with (a COMMENT ON DATABASE), and
# a database whose record is missing or names a migration that is no longer on disk
# with the same contents is rebuilt instead of reused.
MIGRATIONS = ROOT / "events" / "migrations"
SCHEMA_RECORD = "flakyboard bench schema "


def migration_hashes() -> dict[str, str]:
    """events' migration files on disk: name -> sha256 of the contents."""
    return {
        path.stem: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))
    }


def _database_comment(conn, name: str) -> str | None:
    row = conn.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
    ).fetchone()
    return None if row is None else (row[0] or "")


def schema_is_current(name: str) -> bool | None:
    """None: no such database. True: built (and migrated) by migrations that today's
    files continue, so `migrate` brings it up to date. False: rebuild it."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        comment = _database_comment(conn, name)
    if comment is None:
        return None
    if not comment.startswith(SCHEMA_RECORD):
        return False
    try:
        recorded = json.loads(comment.removeprefix(SCHEMA_RECORD))
    except ValueError:
        return False
    on_disk = migration_hashes()
    return isinstance(recorded, dict) and all(on_disk.get(n) == h for n, h in recorded.items())


def record_schema(name: str) -> None:
    """After `migrate`: record the migrations the database now has (see above)."""
    import psycopg
    from psycopg import sql

    text = SCHEMA_RECORD + json.dumps(migration_hashes(), sort_keys=True)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(text)))


def migrate(name: str) -> str:
    """`manage.py migrate` on a bench database, then record its schema; returns its URL."""
    url = database_url(name)
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=server_env(url), check=True
    )
    record_schema(name)
    return url


def server_env(database: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TRUNK_", "DATABASE_URL"))}
    env.update(
        DATABASE_URL=database,
        DJANGO_SECRET_KEY="bench-secret-key-" + "x" * 40,
        TRUNK_WEBHOOK_SECRET=BENCH_SECRET,
        DJANGO_MANIFEST_STATIC="false",
        DJANGO_LOG_LEVEL="WARNING",
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        **extra,
    )
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def production_server(
    database: str,
    *,
    workers: int = 3,
    threads: int = 4,
    settings: str = "flakyboard.settings",
    **extra_env: str,
):
    """bin/start-server (migrate + gunicorn gthread), the image's own start command."""
    port = free_port()
    env = server_env(
        database,
        **{
            "BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": str(threads),
            "DJANGO_SETTINGS_MODULE": settings,
            "GUNICORN_CMD_ARGS": "--access-logfile /dev/null",
            **extra_env,  # may override the ones above
        },
    )
    # Its warnings and errors go to a file (a pipe nobody reads would fill and block the
    # workers): bench/results/server-<port>.log, kept for a look at any error.
    RESULTS.mkdir(exist_ok=True)
    log_path = RESULTS / f"server-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(  # noqa: S603
            [str(ROOT / "bin" / "start-server")],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
    proc.log_path = log_path  # type: ignore[attr-defined]
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base, proc)
        yield base, proc
    finally:
        stop_group(proc, timeout=20)


def wait_for_health(base: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until `base` answers /healthz with 200; fails with the server's log if `proc` (the
    start script) exits first or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:  # noqa: S310
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log = proc.log_path.read_text(errors="replace")  # type: ignore[attr-defined]
            raise RuntimeError(f"{base} did not answer /healthz: {log}")
        time.sleep(0.3)


def stop_group(proc: subprocess.Popen, *, timeout: float) -> None:
    """SIGTERM the process group (a graceful stop); SIGKILL it after `timeout` seconds."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    if not samples_ms:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {
        "p50": at(0.50),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": round(ordered[-1], 2),
        "mean": round(statistics.fmean(ordered), 2),
    }


def machine() -> dict:
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_URL) as conn:
            pg = conn.execute("SHOW server_version").fetchone()[0]
    except Exception:  # noqa: BLE001 - report what we can
        pg = "unavailable"
    mem = ""
    with suppress(OSError, StopIteration):
        mem = next(
            line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
        )
    return {
        "cores": os.cpu_count(),
        "memory": mem.split(":", 1)[-1].strip(),
        "python": platform.python_version(),
        "postgresql": pg,
        "platform": platform.platform(),
    }


def write_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **result,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    return path


def table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns), "  ".join("-" * widths[c] for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


@contextmanager
def projector_process(database: str, *, settings: str = "flakyboard.settings", **extra_env: str):
    """bin/start-projector (waits for migrations, then `project_pending --follow`)."""
    env = server_env(database, DJANGO_SETTINGS_MODULE=settings, **extra_env)
    proc = subprocess.Popen(  # noqa: S603
        [str(ROOT / "bin" / "start-projector"), "--poll", "0.2"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        stop_group(proc, timeout=30)
