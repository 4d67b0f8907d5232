"""The production server against a stalled database: a second PostgreSQL cluster of its
own, paused with SIGSTOP (not down: the kernel still accepts connections and
acknowledges data), must give 503 within 5 s on the receiver and /healthz, and accept
deliveries again once resumed (SIGCONT). See flakyboard/db.py."""

import concurrent.futures
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from tests.conftest import WEBHOOK_URL, svix_headers
from tests.test_deploy import FIXTURE, free_port, start_server

pytestmark = pytest.mark.postgres

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://... (.ci/run does)")
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"needs PostgreSQL 15's server binaries in {PG_BIN}")


def _as_cluster_owner(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a server binary as an unprivileged user: `postgres` when we are root."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=120, **kwargs)


@contextmanager
def scratch_cluster():
    """A PostgreSQL cluster on a free port in a temporary directory; always removed."""
    directory = Path(tempfile.mkdtemp(prefix="fb-faults-pg-"))
    data = directory / "data"
    port = free_port()
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    try:
        _as_cluster_owner([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"])
        options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        _as_cluster_owner(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(directory / "log"),
                "-w",
                "start",
            ]
        )
        yield port, data
    finally:
        with suppress(Exception):
            _signal_cluster(data, signal.SIGCONT)
        with suppress(Exception):
            _as_cluster_owner([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(directory, ignore_errors=True)


def _cluster_pids(data: Path) -> list[int]:
    """The postmaster and every process it started."""
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    return [postmaster, *map(int, children)]


def _signal_cluster(data: Path, signum: int) -> None:
    for pid in _cluster_pids(data):
        with suppress(ProcessLookupError):
            os.kill(pid, signum)


def _timed(server, method: str, path: str, **kwargs) -> tuple[int, float]:
    started = time.monotonic()
    try:
        status = server.request(method, path, **kwargs).status
    except OSError:  # no answer within the client's 10 s
        status = 0
    return status, time.monotonic() - started


def _delivery(msg_id: str) -> dict:
    body = FIXTURE.read_text()
    return {
        "body": body.encode(),
        "headers": {"Content-Type": "application/json", **svix_headers(body, msg_id=msg_id)},
    }


def test_a_paused_database_gives_503_within_5_seconds_and_deliveries_resume(tmp_path):
    with scratch_cluster() as (port, data):
        database_url = f"postgres://postgres@127.0.0.1:{port}/postgres"
        # Default timeouts; 4 threads, so that the requests below are served at once. Inline
        # projection: the receiver's own statements meet the paused database.
        with start_server(
            tmp_path, DATABASE_URL=database_url, GUNICORN_THREADS="4", FLAKYBOARD_DEFERRED_PROJECTION="false"
        ) as server:
            # Connections opened (and kept: CONN_MAX_AGE) before the pause.
            warm = [_timed(server, "POST", WEBHOOK_URL, **_delivery(f"msg_warm_{i}")) for i in range(4)]
            warm += [_timed(server, "GET", "/healthz") for _ in range(4)]
            assert [status for status, _ in warm] == [200] * 8, server.output()

            _signal_cluster(data, signal.SIGSTOP)
            try:
                answers = []
                with concurrent.futures.ThreadPoolExecutor(4) as pool:
                    for round_ in range(3):  # reused connections first, then new ones
                        futures = [
                            pool.submit(
                                _timed, server, "POST", WEBHOOK_URL, **_delivery(f"msg_paused_{round_}_{i}")
                            )
                            for i in range(2)
                        ] + [pool.submit(_timed, server, "GET", "/healthz") for _ in range(2)]
                        answers += [future.result() for future in futures]
                # More requests at once than the server has threads (4): those queued
                # behind the first must not add their wait to it (the breaker answers
                # them at once).
                with concurrent.futures.ThreadPoolExecutor(16) as pool:
                    futures = [
                        pool.submit(_timed, server, "POST", WEBHOOK_URL, **_delivery(f"msg_burst_{i}"))
                        for i in range(8)
                    ] + [pool.submit(_timed, server, "GET", "/healthz") for _ in range(8)]
                    answers += [future.result() for future in futures]
            finally:
                _signal_cluster(data, signal.SIGCONT)
            print(f"\nwhile paused: {[(status, round(seconds, 2)) for status, seconds in answers]}")
            assert [status for status, _ in answers] == [503] * len(answers), server.output()
            assert max(seconds for _, seconds in answers) < 5, answers

            # The server answers 503 at once for a moment after the stall, then probes.
            deadline = time.monotonic() + 15
            while server.request("GET", "/healthz").status != 200:
                assert time.monotonic() < deadline, server.output()
                time.sleep(0.5)
            resumed = server.request("POST", WEBHOOK_URL, **_delivery("msg_resumed"))
            assert resumed.status == 200, server.output()
            assert resumed.json()["status"] == "processed"
            assert server.request("GET", "/healthz").status == 200
            with psycopg.connect(database_url) as db:
                stored = db.execute("SELECT svix_id, outcome FROM events_delivery ORDER BY id").fetchall()
            assert stored[-1] == ("msg_resumed", "processed")
            assert not [svix_id for svix_id, _ in stored if svix_id.startswith(("msg_paused_", "msg_burst_"))]
