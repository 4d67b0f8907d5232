"""Read replicas against a real streaming replica (PostgreSQL): a scratch primary cluster
and a replica made from it with `pg_basebackup -R`, on ports of their own. The dashboard's
and the API's reads are served by the replica (with its replay paused, they do not see
a new test), writes land on the primary, and a user who just wrote reads from the primary
(they see their own triage at once)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import pwd
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from events.demo import payloads
from tests.conftest import WEBHOOK_URL, svix_headers
from tests.events.factories import MONITOR, at, fake_test
from tests.notifications.test_processes import manage
from tests.test_deploy import Server, free_port, server_env, start_server
from tests.test_faults import PG_BIN, _as_cluster_owner, _signal_cluster, scratch_cluster

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://... (.ci/run does)")
    if not (PG_BIN / "pg_basebackup").exists():
        pytest.skip(f"needs PostgreSQL 15's server binaries in {PG_BIN}")


@contextmanager
def streaming_replica(primary_port: int):
    """A hot standby of the primary on a free port, following it by streaming replication:
    yields (port, data directory)."""
    directory = Path(tempfile.mkdtemp(prefix="fb-replica-pg-"))
    data = directory / "data"
    port = free_port()
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    try:
        _as_cluster_owner(
            [str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary_port), "-U", "postgres"]
            # A fast checkpoint: the default (spread) waits out most of checkpoint_timeout.
            + ["-D", str(data), "-R", "-X", "stream", "--checkpoint=fast"]
        )
        options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c hot_standby=on"
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


def status_change(n: int) -> str:
    return json.dumps(
        payloads.status_changed(
            fake_test(n, name=f"replicated_test_{n}"),
            at=at(3),
            previous="HEALTHY",
            new="FLAKY",
            monitor_id=MONITOR,
            monitor_type="x",
        )
    )


def wait_until(check, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting: {what}"
        time.sleep(0.2)


@dataclass
class Deployment:
    """A server reading from a streaming replica of its primary."""

    server: Server
    primary: str  # URLs
    replica: str
    replica_data: Path
    auth: dict[str, str]
    primary_data: Path | None = None

    def rows(self, url: str, sql: str) -> list:
        with psycopg.connect(url) as db:
            return db.execute(sql).fetchall()

    def post(self, n: int) -> None:
        body = status_change(n)
        headers = {"Content-Type": "application/json", **svix_headers(body)}
        answer = self.server.request("POST", WEBHOOK_URL, body=body.encode(), headers=headers)
        assert answer.status == 200, self.server.output()

    def api(self, path: str, **headers) -> dict:
        answer = self.server.request("GET", path, headers={**self.auth, **headers})
        assert answer.status == 200, (answer.status, answer.body[:300], self.server.output())
        return answer.json()

    def replicated(self, n: int) -> None:
        test = str(fake_test(n).id)
        wait_until(
            lambda: self.rows(self.replica, f"SELECT 1 FROM events_testcase WHERE id = '{test}'"),
            "replication",
        )


@contextmanager
def deployment(tmp_path: Path, **overrides: str) -> Iterator[Deployment]:
    with scratch_cluster() as (primary_port, primary_data):
        with psycopg.connect(f"postgres://postgres@127.0.0.1:{primary_port}/postgres", autocommit=True) as db:
            db.execute("CREATE DATABASE flakyboard")
        with streaming_replica(primary_port) as (replica_port, replica_data):
            primary = f"postgres://postgres@127.0.0.1:{primary_port}/flakyboard"
            replica = f"postgres://postgres@127.0.0.1:{replica_port}/flakyboard"
            env = {
                "DATABASE_URL": primary,
                "DATABASE_REPLICA_URL": replica,
                "FLAKYBOARD_DEFERRED_PROJECTION": "false",  # applied before the answer
                "FLAKYBOARD_PUBLIC_DASHBOARD": "true",
                **overrides,
            }
            with start_server(tmp_path, **env) as server:
                manage_env = server_env(tmp_path, free_port(), **env)
                token = (
                    manage(
                        tmp_path,
                        manage_env,
                        "shell",
                        "-c",
                        "from django.contrib.auth import get_user_model; from rest_framework.authtoken.models import Token; "
                        "u = get_user_model().objects.create_superuser('ops', 'ops@example.com', 'pw'); "
                        "print(Token.objects.create(user=u).key)",
                    )
                    .strip()
                    .splitlines()[-1]
                )
                yield Deployment(
                    server, primary, replica, replica_data, {"Authorization": f"Token {token}"}, primary_data
                )


def test_reads_come_from_the_replica_and_a_user_sees_their_own_write(tmp_path):
    with deployment(tmp_path) as deployed:
        rows, post, api = deployed.rows, deployed.post, deployed.api
        primary, replica, server, auth = deployed.primary, deployed.replica, deployed.server, deployed.auth
        post(1)
        first = str(fake_test(1).id)
        deployed.replicated(1)
        assert [t["id"] for t in api("/api/v1/test-cases/")["results"]] == [first]

        # The replica stops replaying: what the primary gets next is not on it.
        rows(replica, "SELECT pg_wal_replay_pause()")
        post(2)
        assert len(rows(primary, "SELECT id FROM events_testcase")) == 2  # the write: on the primary
        assert [t["id"] for t in api("/api/v1/test-cases/")["results"]] == [first]  # read: the replica
        page = server.request("GET", "/tests/")
        assert page.status == 200 and b"replicated_test_1" in page.body
        assert b"replicated_test_2" not in page.body

        # A user's own write (triage through the API): their next reads are the primary's.
        changed = server.request(
            "PATCH",
            f"/api/v1/test-cases/{first}/",
            body=json.dumps({"triage_state": "investigating"}).encode(),
            headers={**auth, "Content-Type": "application/json"},
        )
        assert changed.status == 200, changed.body
        cookie = changed.headers.get("set-cookie", "")
        assert "flakyboard_primary=1" in cookie
        sticky = {"Cookie": "flakyboard_primary=1"}
        assert api(f"/api/v1/test-cases/{first}/", **sticky)["triage_state"] == "investigating"
        assert len(api("/api/v1/test-cases/", **sticky)["results"]) == 2
        # Others still read the replica, as it was when paused.
        assert api(f"/api/v1/test-cases/{first}/")["triage_state"] == "new"

        rows(replica, "SELECT pg_wal_replay_resume()")
        wait_until(lambda: len(api("/api/v1/test-cases/")["results"]) == 2, "replay resumed")


def metric(deployed: Deployment, name: str) -> float:
    answer = deployed.server.request("GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status == 200, answer.status
    values = [line.split()[-1] for line in answer.body.decode().splitlines() if line.startswith(f"{name} ")]
    return float(values[0]) if values else 0.0


METRICS_TOKEN = "replica-metrics-t0ken"


def test_a_replica_that_stalls_or_stops_costs_no_page_and_never_the_receiver(tmp_path):
    """The pages' reads go to the primary while the replica does not answer (run again
    there, then for FLAKYBOARD_REPLICA_RETRY_SECONDS), and back to the replica after; the
    receiver answers throughout (a replica's stall does not trip the primary's breaker)."""
    overrides = {
        "FLAKYBOARD_REPLICA_RETRY_SECONDS": "3",
        "FLAKYBOARD_SHARED_PAGE_SECONDS": "0",  # every page computed: which database answers
        "FLAKYBOARD_METRICS_TOKEN": METRICS_TOKEN,
    }
    with deployment(tmp_path, **overrides) as deployed:
        server = deployed.server

        def tests_page() -> bytes:
            page = server.request("GET", "/tests/")
            assert page.status == 200, (page.status, server.output())
            return page.body

        def from_replica() -> bool:
            """Test 2 is on the primary only (the replica's replay is paused)."""
            body = tests_page()
            assert b"replicated_test_1" in body
            return b"replicated_test_2" not in body

        deployed.post(1)
        deployed.replicated(1)
        deployed.rows(deployed.replica, "SELECT pg_wal_replay_pause()")
        deployed.post(2)
        assert from_replica()
        assert len(deployed.api("/api/v1/test-cases/")["results"]) == 1

        # Stalled (every process of the replica stopped): its connection's next wait runs
        # out (3 s statement timeout + 1 s); the page is computed again on the primary.
        _signal_cluster(deployed.replica_data, signal.SIGSTOP)
        try:
            assert not from_replica()
            assert metric(deployed, "flakyboard_replica_failures_total") >= 1
            # Meanwhile the primary answers every read at once, and the receiver (no 503
            # from the primary's breaker), in the same server process.
            assert len(deployed.api("/api/v1/test-cases/")["results"]) == 2
            deployed.post(3)
            assert server.request("GET", "/healthz").status == 200
        finally:
            _signal_cluster(deployed.replica_data, signal.SIGCONT)

        # After FLAKYBOARD_REPLICA_RETRY_SECONDS the replica is read again.
        wait_until(from_replica, "reads back on the replica", timeout=15)

        # Stopped: the connection is refused; the same again.
        failures = metric(deployed, "flakyboard_replica_failures_total")
        _as_cluster_owner(
            [str(PG_BIN / "pg_ctl"), "-D", str(deployed.replica_data), "-m", "immediate", "-w", "stop"]
        )
        assert not from_replica()
        assert len(deployed.api("/api/v1/test-cases/")["results"]) == 3
        deployed.post(4)
        assert metric(deployed, "flakyboard_replica_failures_total") > failures
        assert "the read replica failed" in server.output()


def test_an_api_read_run_again_on_the_primary_is_throttled_once(tmp_path):
    """A replica failure on an API read runs the view again, DRF's throttles with it: the
    client is charged one request, not two (3/minute: three reads answered)."""
    overrides = {"FLAKYBOARD_API_THROTTLE_USER": "3/minute", "FLAKYBOARD_REPLICA_RETRY_SECONDS": "60"}
    with deployment(tmp_path, **overrides) as deployed:
        _as_cluster_owner(
            [str(PG_BIN / "pg_ctl"), "-D", str(deployed.replica_data), "-m", "immediate", "-w", "stop"]
        )
        statuses = [
            deployed.server.request("GET", "/api/v1/test-cases/", headers=deployed.auth).status
            for _ in range(3)
        ]
        assert statuses == [200, 200, 200], statuses


def test_a_primary_error_is_not_blamed_on_the_replica(tmp_path):
    """connections["replica"].errors_occurred is left True by a failed connect (the
    connection stays None, so close_old_connections never clears it): a later request
    routed to the replica that fails on the *primary* is the primary's failure (503)."""
    overrides = {"FLAKYBOARD_REPLICA_RETRY_SECONDS": "1", "GUNICORN_THREADS": "1"}
    with deployment(tmp_path, **overrides) as deployed:
        server = deployed.server
        # The only thread's first replica connect times out (stalled postmaster).
        _signal_cluster(deployed.replica_data, signal.SIGSTOP)
        try:
            assert deployed.server.request("GET", "/api/v1/test-cases/", headers=deployed.auth).status == 200
        finally:
            _signal_cluster(deployed.replica_data, signal.SIGCONT)
        assert server.output().count("the read replica failed") == 1
        time.sleep(1.5)  # the retry window is over; the replica answers again
        # The primary goes away; the replica is fine.
        _as_cluster_owner(
            [str(PG_BIN / "pg_ctl"), "-D", str(deployed.primary_data), "-m", "immediate", "-w", "stop"]
        )
        answer = deployed.server.request("GET", "/api/v1/test-cases/", headers=deployed.auth)
        assert answer.status == 503
        blamed = [line for line in server.output().splitlines() if "the read replica failed" in line]
        assert len(blamed) == 1, (deployed.primary, deployed.replica, blamed)


def test_after_the_retry_window_one_read_probes_a_stalled_replica(tmp_path):
    """After the retry window one read probes the replica; the reads that arrive while it
    waits stay on the primary (one failure counted, not one per read)."""
    overrides = {
        "FLAKYBOARD_REPLICA_RETRY_SECONDS": "2",
        "FLAKYBOARD_SHARED_PAGE_SECONDS": "0",
        "FLAKYBOARD_METRICS_TOKEN": METRICS_TOKEN,
        "GUNICORN_THREADS": "4",
    }
    with deployment(tmp_path, **overrides) as deployed:
        server = deployed.server
        deployed.post(1)
        deployed.replicated(1)

        def timed_page(_=None) -> float:
            started = time.monotonic()
            page = server.request("GET", "/tests/")
            assert page.status == 200
            return time.monotonic() - started

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(timed_page, range(4)))  # every thread has its replica connection
        _signal_cluster(deployed.replica_data, signal.SIGSTOP)
        try:
            timed_page()  # the first to find it stalled
            time.sleep(2.2)  # the retry window ends, the replica is still stalled
            before = metric(deployed, "flakyboard_replica_failures_total")
            with concurrent.futures.ThreadPoolExecutor(3) as pool:
                durations = list(pool.map(timed_page, range(3)))
            after = metric(deployed, "flakyboard_replica_failures_total")
        finally:
            _signal_cluster(deployed.replica_data, signal.SIGCONT)
        assert after - before == 1, (after - before, durations)
