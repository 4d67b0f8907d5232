"""Read replicas against a real streaming replica (PostgreSQL): a scratch primary cluster
and a replica made from it with `pg_basebackup -R`, on ports of their own. The dashboard's
and the API's reads are served by the replica (with its replay paused, they do not see
a new test), writes land on the primary, and a user who just wrote reads from the primary
(they see their own triage at once)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from events.demo import payloads
from tests.conftest import WEBHOOK_URL, svix_headers
from tests.events.factories import MONITOR, at, fake_test
from tests.notifications.test_processes import manage
from tests.test_deploy import free_port, server_env, start_server
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
    """A hot standby of the primary on a free port, following it by streaming replication."""
    directory = Path(tempfile.mkdtemp(prefix="fb-replica-pg-"))
    data = directory / "data"
    port = free_port()
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    try:
        _as_cluster_owner(
            [str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary_port), "-U", "postgres"]
            + ["-D", str(data), "-R", "-X", "stream"]
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
        yield port
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


def test_reads_come_from_the_replica_and_a_user_sees_their_own_write(tmp_path):
    with scratch_cluster() as (primary_port, _):
        with psycopg.connect(f"postgres://postgres@127.0.0.1:{primary_port}/postgres", autocommit=True) as db:
            db.execute("CREATE DATABASE flakyboard")
        with streaming_replica(primary_port) as replica_port:
            primary = f"postgres://postgres@127.0.0.1:{primary_port}/flakyboard"
            replica = f"postgres://postgres@127.0.0.1:{replica_port}/flakyboard"

            def rows(url: str, sql: str) -> list:
                with psycopg.connect(url) as db:
                    return db.execute(sql).fetchall()

            env = {
                "DATABASE_URL": primary,
                "DATABASE_REPLICA_URL": replica,
                "FLAKYBOARD_DEFERRED_PROJECTION": "false",  # applied before the answer
                "FLAKYBOARD_PUBLIC_DASHBOARD": "true",
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
                auth = {"Authorization": f"Token {token}"}

                def post(n: int) -> None:
                    body = status_change(n)
                    headers = {"Content-Type": "application/json", **svix_headers(body)}
                    answer = server.request("POST", WEBHOOK_URL, body=body.encode(), headers=headers)
                    assert answer.status == 200, server.output()

                def api(path: str, **headers) -> dict:
                    answer = server.request("GET", path, headers={**auth, **headers})
                    assert answer.status == 200, (answer.status, answer.body[:300], server.output())
                    return answer.json()

                post(1)
                first = str(fake_test(1).id)
                wait_until(
                    lambda: rows(replica, f"SELECT 1 FROM events_testcase WHERE id = '{first}'"),
                    "replication",
                )
                assert [t["id"] for t in api("/api/v1/test-cases/")["results"]] == [first]

                # The replica stops replaying: what the primary gets next is not on it.
                rows(replica, "SELECT pg_wal_replay_pause()")
                post(2)
                assert len(rows(primary, "SELECT id FROM events_testcase")) == 2  # the write: on the primary
                assert [t["id"] for t in api("/api/v1/test-cases/")["results"]] == [
                    first
                ]  # read: the replica
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
