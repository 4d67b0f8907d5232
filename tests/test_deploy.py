"""The deployment: bin/start-server really started (migrate + gunicorn), plus sanity
checks of the Dockerfile and docker-compose.yml, which cannot be built or run here.

The server runs with the virtualenv's bin directory first on PATH, the way the image
puts its own virtualenv first, and with DEBUG off: the production code path.
"""

import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import TEST_SECRET, WEBHOOK_URL, svix_headers
from tests.test_settings import PRODUCTION_ENV, dot_env_defines, project_env

ROOT = Path(__file__).resolve().parent.parent
START_SERVER = ROOT / "bin" / "start-server"
VENV_BIN = Path(sys.executable).parent
FIXTURE = ROOT / "tests" / "fixtures" / "v2.test_case.status_changed__reference_example.json"
SECRET_KEY = "test-deploy-" + "k3y-" * 15


# --- Running bin/start-server -------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Server:
    port: int
    process: subprocess.Popen
    log: Path

    def request(
        self, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None
    ) -> Response:
        """One plain-HTTP request; redirects are returned, never followed."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Response(
                response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
            )
        finally:
            connection.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def server_env(tmp_path: Path, port: int, **overrides: str) -> dict[str, str]:
    env = project_env(
        tmp_path,
        DJANGO_SECRET_KEY=SECRET_KEY,
        TRUNK_WEBHOOK_SECRET=TEST_SECRET,
        # No collectstatic in tests: serve assets by name, without the manifest.
        DJANGO_MANIFEST_STATIC="false",
        BIND=f"127.0.0.1:{port}",
        PORT=str(port),
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="2",
        # gunicorn's control socket goes to $XDG_RUNTIME_DIR or ~/.gunicorn: keep it
        # private to this test instead of replacing another gunicorn's socket.
        HOME=str(tmp_path),
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.pop("XDG_RUNTIME_DIR", None)
    env.pop("GUNICORN_CMD_ARGS", None)
    env.update(overrides)
    return env


def stop(process: subprocess.Popen, timeout: float = 20) -> int:
    """SIGTERM the server's process group (gunicorn and its workers); wait for it."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def start_server(tmp_path: Path, **overrides: str) -> Iterator[Server]:
    """Run bin/start-server until it answers /healthz, then yield; always stop it."""
    assert shutil.which("gunicorn", path=str(VENV_BIN)), f"gunicorn is not installed in {VENV_BIN}"
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(START_SERVER)],
            cwd=tmp_path,  # the script finds the project from its own path
            env=server_env(tmp_path, port, **overrides),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, to stop workers too
        )
    server = Server(port, process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (
                f"start-server exited with {process.returncode}:\n{server.output()}"
            )
            assert time.monotonic() < deadline, f"/healthz did not answer within 30 s:\n{server.output()}"
            try:
                server.request("GET", "/healthz")
                break  # any HTTP answer: the tests look at the status themselves
            except OSError:
                time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            stop(process)


def test_start_server_serves_plain_http_with_debug_off(tmp_path):
    overrides = {}
    if dot_env_defines("DJANGO_DEBUG"):
        # A developer's .env would turn DEBUG on; empty is off and shadows it.
        overrides["DJANGO_DEBUG"] = ""
    with start_server(tmp_path, **overrides) as server:
        assert (tmp_path / "db.sqlite3").exists(), "migrate did not run on the DATABASE_URL database"
        assert "Applying events." in server.output()

        health = server.request("GET", "/healthz")
        # Plain HTTP is served, not redirected: HTTPS is opt-in, DEBUG off does not imply it.
        assert health.status == 200, (health, server.output())
        assert "location" not in health.headers
        assert health.json() == {"status": "ok", "database": "ok"}
        assert "strict-transport-security" not in health.headers

        body = FIXTURE.read_text()
        headers = {"Content-Type": "application/json", **svix_headers(body)}
        delivered = server.request("POST", WEBHOOK_URL, body=body.encode(), headers=headers)
        assert delivered.status == 200, (delivered, server.output())
        # Fast by default: stored and answered, then applied by the projector that
        # bin/start-server runs beside gunicorn, within seconds.
        assert delivered.json()["status"] == "pending"
        deadline = time.monotonic() + 30
        while _outcome(tmp_path / "db.sqlite3", delivered.json()["delivery"]) != "processed":
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.2)
        # Svix retries with the same id: stored once, acknowledged again.
        again = server.request("POST", WEBHOOK_URL, body=body.encode(), headers=headers)
        assert (again.status, again.json()["status"]) == (200, "duplicate")

        forged = server.request(
            "POST", WEBHOOK_URL, body=body.encode(), headers={**headers, "svix-id": "msg_forged"}
        )
        assert forged.status == 401

        # A chunked body (no Content-Length) is read whole, not as empty: gunicorn ends
        # the input with the body (wsgi.input_terminated).
        chunked = FIXTURE.read_text().replace("test_refund_is_idempotent", "chunked")
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            connection.request(
                "POST",
                WEBHOOK_URL,
                body=iter([chunked[:100].encode(), chunked[100:].encode()]),
                headers={"Content-Type": "application/json", **svix_headers(chunked)},
                encode_chunked=True,
            )
            answer = connection.getresponse()
            assert (answer.status, json.loads(answer.read())["status"]) == (200, "pending")
        finally:
            connection.close()

        # DEBUG is really off: an unknown URL gets the plain 404, not the debug page.
        missing = server.request("GET", "/no-such-page/")
        assert missing.status == 404
        assert b"URLconf" not in missing.body

        # Templates render with DEBUG off (login page, static URLs without manifest).
        login = server.request("GET", "/accounts/login/")
        assert login.status == 200, server.output()

        # gunicorn's access log goes to stdout.
        assert f"POST {WEBHOOK_URL}" in server.output()

        pgid = server.process.pid
        assert stop(server.process) == 0, server.output()
        deadline = time.monotonic() + 10
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not group_alive(pgid), "gunicorn workers outlived the master"
        with pytest.raises(OSError):
            server.request("GET", "/healthz")


def test_start_server_behind_tls_proxy_and_docker_healthcheck(tmp_path):
    """The production variables: plain HTTP redirects, proxied HTTPS is served, and the
    Dockerfile's HEALTHCHECK command still passes."""
    host = "flakyboard.example.com"
    proxied = {"Host": host, "X-Forwarded-Proto": "https"}
    with start_server(tmp_path, **PRODUCTION_ENV) as server:
        redirected = server.request("GET", "/healthz", headers={"Host": host})
        assert redirected.status == 301
        assert redirected.headers["location"] == f"https://{host}/healthz"

        assert server.request("GET", "/healthz").status == 400  # Host 127.0.0.1 not allowed

        health = server.request("GET", "/healthz", headers=proxied)
        assert health.status == 200, server.output()
        assert health.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload"

        body = FIXTURE.read_text()
        headers = {**proxied, "Content-Type": "application/json", **svix_headers(body)}
        delivered = server.request("POST", WEBHOOK_URL, body=body.encode(), headers=headers)
        assert delivered.status == 200, server.output()

        probe = subprocess.run(
            [sys.executable, "-c", healthcheck_code()],
            env=server_env(tmp_path, server.port, **PRODUCTION_ENV),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert probe.returncode == 0, probe.stderr


def test_start_server_runs_a_receiver_pool_of_its_own_when_asked(tmp_path):
    """RECEIVER_BIND: a second gunicorn serves deliveries only, the pages' one runs at a
    lower CPU priority, and both stop with the process group."""
    receiver_port = free_port()
    with start_server(tmp_path, RECEIVER_BIND=f"127.0.0.1:{receiver_port}") as server:
        receiver = Server(receiver_port, server.process, server.log)
        deadline = time.monotonic() + 30
        while True:
            try:
                assert receiver.request("GET", "/healthz").status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, server.output()
                time.sleep(0.2)

        body = FIXTURE.read_text()
        headers = {"Content-Type": "application/json", **svix_headers(body)}
        delivered = receiver.request("POST", WEBHOOK_URL, body=body.encode(), headers=headers)
        assert (delivered.status, delivered.json()["status"]) == (200, "pending"), server.output()
        deadline = time.monotonic() + 30
        while _outcome(tmp_path / "db.sqlite3", delivered.json()["delivery"]) != "processed":
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.2)
        # The same delivery on the main port: one endpoint, one log, stored once.
        again = server.request("POST", WEBHOOK_URL, body=body.encode(), headers=headers)
        assert (again.status, again.json()["status"]) == (200, "duplicate")

        # The receiver's pool serves nothing a reader could keep busy; the main port does.
        for path in (
            "/",
            "/tests/",
            "/accounts/login/",
            "/api/v1/test-cases/",
            "/admin/",
            "/static/flakyboard/app.css",
        ):
            assert receiver.request("GET", path).status == 404, path
        assert server.request("GET", "/accounts/login/").status == 200

        # The pages' gunicorn (the script's own process, exec'd) yields the CPU to the
        # receiver's: nice 3 against 0.
        assert os.getpriority(os.PRIO_PROCESS, server.process.pid) == 3
        receivers = [pid for pid in group_members(server.process.pid) if receiver_only(pid)]
        assert receivers, "no receiver-only gunicorn in the process group"
        assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in receivers} == {0}

        pgid = server.process.pid
        assert stop(server.process) == 0, server.output()
        deadline = time.monotonic() + 15
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not group_alive(pgid), "the receiver's pool outlived the server"


def test_start_server_refuses_a_receiver_pool_on_the_site_port(tmp_path):
    port = free_port()
    result = subprocess.run(
        [str(START_SERVER)],
        cwd=tmp_path,
        env=server_env(tmp_path, port, RECEIVER_BIND=f"127.0.0.1:{port}"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "the receiver pool needs a port of its own" in result.stderr


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                if os.getpgid(int(entry.name)) == pgid:
                    members.append(int(entry.name))
    return members


def receiver_only(pid: int) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"FLAKYBOARD_RECEIVER_ONLY=true" in environ and b"gunicorn" in command


def test_the_api_throttle_holds_across_gunicorn_workers(tmp_path):
    """Three worker processes, one anonymous limit of 5 a minute: 5 answers in all, not 5
    per worker. The access log names the worker (pid) of each request, to show that more
    than one of them answered."""
    limit = 5
    with start_server(
        tmp_path,
        DJANGO_DEBUG="",
        WEB_CONCURRENCY="3",
        GUNICORN_THREADS="1",
        FLAKYBOARD_PUBLIC_DASHBOARD="true",
        FLAKYBOARD_API_THROTTLE_ANON=f"{limit}/minute",
        GUNICORN_CMD_ARGS="--access-logformat 'worker=%(p)s %(U)s %(s)s'",
    ) as server:
        # A rotated X-Forwarded-For on each request (no trusted proxy): still one client.
        # Which worker accepts a connection is the kernel's choice: requests go six at a
        # time (so a busy worker leaves the next to another) until two workers have answered.
        sent = itertools.count()

        def get() -> int:
            forwarded = f"198.51.100.{next(sent) % 250}"
            return server.request(
                "GET", "/api/v1/repositories/", headers={"X-Forwarded-For": forwarded}
            ).status

        statuses: list[int] = []
        workers: set[str] = set()
        with ThreadPoolExecutor(max_workers=6) as pool:
            while len(statuses) < 4 * limit or (len(workers) < 2 and len(statuses) < 300):
                statuses += pool.map(lambda _: get(), range(6))
                workers = set(
                    re.findall(r"worker=<(\d+)> /api/v1/repositories/ (?:200|429)", server.output())
                )
        log = server.output()
    assert len(workers) > 1, f"one worker answered every request, nothing was shown shared:\n{log}"
    # Unshared, each worker would allow its own `limit`.
    assert (statuses.count(200), statuses.count(429)) == (limit, len(statuses) - limit), log


def test_start_server_refuses_to_start_without_secret_key(tmp_path):
    env = server_env(tmp_path, free_port(), DJANGO_SECRET_KEY="", DJANGO_DEBUG="false")
    result = subprocess.run(
        [str(START_SERVER)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "flakyboard.E001" in result.stderr
    assert "Booting worker" not in result.stdout + result.stderr


START_PROJECTOR = ROOT / "bin" / "start-projector"


def test_start_projector_applies_what_the_deferred_receiver_stored_and_stops_on_sigterm(tmp_path):
    """FLAKYBOARD_DEFERRED_PROJECTION as in docker-compose.yml: the web service answers
    `pending`, bin/start-projector applies it, and SIGTERM stops it cleanly."""
    env = {
        "FLAKYBOARD_DEFERRED_PROJECTION": "true",
        "FLAKYBOARD_PROJECTOR": "off",
        "PROJECTOR_WAIT_SECONDS": "0.2",
    }
    log = tmp_path / "projector.log"
    with log.open("wb") as log_file:
        # Started first: it waits until bin/start-server has migrated the database.
        projector = subprocess.Popen(
            [str(START_PROJECTOR), "--poll", "0.1"],
            cwd=tmp_path,
            env=server_env(tmp_path, free_port(), **env),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            # An unmigrated database: it waits (and says so) until start-server migrates.
            deadline = time.monotonic() + 30
            while "waiting for the database and its migrations" not in log.read_text():
                assert projector.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            with start_server(tmp_path, **env) as server:
                body = FIXTURE.read_text()
                headers = {"Content-Type": "application/json", **svix_headers(body)}
                delivered = server.request("POST", WEBHOOK_URL, body=body.encode(), headers=headers)
                assert (delivered.status, delivered.json()["status"]) == (200, "pending")
                database = tmp_path / "db.sqlite3"
                deadline = time.monotonic() + 30
                while _outcome(database, delivered.json()["delivery"]) != "processed":
                    assert projector.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.1)
                with sqlite3.connect(database) as db:
                    assert db.execute("SELECT count(*) FROM events_statuschange").fetchone() == (1,)
        finally:
            returncode = stop(projector) if projector.poll() is None else projector.returncode
    output = log.read_text()
    assert returncode == 0, output
    assert "waiting for the database and its migrations" in output
    assert "Applied 1 pending deliveries." in output


def _outcome(database: Path, delivery_id: int) -> str | None:
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT outcome FROM events_delivery WHERE id = ?", (delivery_id,)).fetchone()
    return row and row[0]


# --- Dockerfile, .dockerignore, docker-compose.yml ----------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            instructions.append((instruction.upper(), arguments.strip()))
    return instructions


def healthcheck_code() -> str:
    [arguments] = [args for instruction, args in dockerfile_instructions() if instruction == "HEALTHCHECK"]
    command = json.loads(arguments.split(" CMD ", 1)[1])
    assert command[:2] == ["python", "-c"]
    return command[2]


def test_dockerfile_essentials():
    instructions = dockerfile_instructions()
    by_name: dict[str, list[str]] = {}
    for instruction, arguments in instructions:
        by_name.setdefault(instruction, []).append(arguments)

    assert all(image.startswith("python:3.11-slim") for image in by_name["FROM"])
    runs = " ".join(by_name["RUN"])
    assert "pip install --no-cache-dir -r requirements.txt" in runs
    assert "collectstatic --noinput" in runs
    envs = " ".join(by_name["ENV"])
    assert "PYTHONDONTWRITEBYTECODE=1" in envs and "PYTHONUNBUFFERED=1" in envs
    # No secret (not even a dummy) is baked into the image's environment.
    for secret in ("DJANGO_SECRET_KEY", "TRUNK_WEBHOOK_SECRET", "DJANGO_DEBUG"):
        assert secret not in envs + " ".join(by_name.get("ARG", []))

    # The final stage runs as an unprivileged user, serves 8000 and starts bin/start-server.
    final_stage = instructions[max(i for i, (name, _) in enumerate(instructions) if name == "FROM") :]
    users = [args for name, args in final_stage if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("EXPOSE", "8000 8001") in final_stage
    assert json.loads(by_name["CMD"][-1]) == ["bin/start-server"]
    assert "/healthz" in healthcheck_code() and "urllib" in healthcheck_code()
    assert "127.0.0.1" in healthcheck_code()


def test_dockerfile_healthcheck_fails_when_nothing_answers(tmp_path):
    env = server_env(tmp_path, free_port())
    probe = subprocess.run(
        [sys.executable, "-c", healthcheck_code()], env=env, capture_output=True, text=True, timeout=30
    )
    assert probe.returncode != 0


def test_start_scripts_are_executable_and_start_gunicorn_and_the_projector():
    assert os.access(START_PROJECTOR, os.X_OK)
    assert (
        "exec nice" in START_PROJECTOR.read_text()
        and "project_pending --follow" in START_PROJECTOR.read_text()
    )
    assert os.access(START_SERVER, os.X_OK)
    script = START_SERVER.read_text()
    assert script.startswith("#!/bin/sh")
    assert "migrate --noinput" in script
    assert 'exec nice -n "${WEB_NICE:-$web_nice_default}" gunicorn flakyboard.wsgi:application' in script


def test_dockerignore_keeps_local_state_out():
    entries = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    assert {".venv", ".git", "db.sqlite3", "staticfiles", "artifacts", "bench/results", ".env"} <= entries
    assert "**/__pycache__" in entries or "__pycache__" in entries


def test_docker_compose_defines_db_and_web():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    db, web = compose["services"]["db"], compose["services"]["web"]

    assert db["image"] == "postgres:15"
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in db["volumes"])
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert set(compose["volumes"]) >= {volume.split(":")[0] for volume in db["volumes"]}

    assert web["build"] == "."
    assert web["environment"]["DATABASE_URL"] == "postgres://flakyboard:flakyboard@db:5432/flakyboard"
    credentials = db["environment"]
    assert (credentials["POSTGRES_USER"], credentials["POSTGRES_PASSWORD"], credentials["POSTGRES_DB"]) == (
        "flakyboard",
        "flakyboard",
        "flakyboard",
    )
    assert web["depends_on"]["db"]["condition"] == "service_healthy"
    assert "8000:8000" in web["ports"]

    # The receiver stores, the projector applies: both with the same settings.
    projector = compose["services"]["projector"]
    assert projector["command"] == ["bin/start-projector"]
    assert web["environment"]["FLAKYBOARD_DEFERRED_PROJECTION"] == "true"
    # The projector service applies; the web service's start script starts none of its own.
    assert web["environment"]["FLAKYBOARD_PROJECTOR"] == "off"
    assert projector["environment"] == web["environment"]
    assert projector["healthcheck"] == {"disable": True}

    # The receiver's own capacity: the same image and settings, deliveries only, on 8001,
    # started once web (which migrates) is healthy; the pages run at a lower priority.
    receiver = compose["services"]["receiver"]
    assert receiver["command"] == ["bin/start-server"]
    assert receiver["environment"] == {
        **web["environment"],
        "FLAKYBOARD_RECEIVER_ONLY": "true",
        "PORT": "8001",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "12",
    }
    assert receiver["depends_on"]["web"]["condition"] == "service_healthy"
    assert "8001:8001" in receiver["ports"]
    assert web["command"] == ["nice", "-n", "3", "bin/start-server"]

    # Notifications: the task worker and the schedule, with the same settings.
    worker, scheduler = compose["services"]["worker"], compose["services"]["scheduler"]
    assert worker["command"] == ["bin/start-worker"]
    assert scheduler["command"] == ["bin/start-worker", "schedule"]
    for service in (worker, scheduler):
        assert service["environment"] == web["environment"]
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
        assert service["healthcheck"] == {"disable": True}
