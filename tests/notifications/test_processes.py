"""bin/start-worker as docker-compose runs it: the task worker sends a queued message to a
receiver on 127.0.0.1, the schedule runs, and both stop cleanly on SIGTERM."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.notifications.receivers import Receiver
from tests.test_deploy import ROOT, free_port, server_env, stop

START_WORKER = ROOT / "bin" / "start-worker"


def manage(tmp_path: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def start(tmp_path: Path, env: dict[str, str], *args: str, name: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{name}.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(START_WORKER), *args],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, log


def test_start_worker_sends_a_queued_message_and_the_schedule_runs(tmp_path):
    receiver = Receiver().start()
    try:
        env = server_env(tmp_path, free_port(), WORKER_WAIT_SECONDS="0.2")
        manage(tmp_path, env, "migrate", "--noinput", "-v", "0")
        manage(
            tmp_path,
            env,
            "shell",
            "-c",
            # Queued, not sent at once (send_test_message would post from this shell, and
            # the worker could then be stopped before it had even started: exit -15).
            "from notifications.models import Message, Subscription; from notifications import render, sending; "
            f"s = Subscription.objects.create(name='team', destination='{receiver.url('json', '/team')}'); "
            "c = render.test_message(subscription_name='team'); "
            "m = Message.objects.create(subscription=s, kind='test', key='k', title=c.title, content=render.to_json(c)); "
            "sending.enqueue_on_commit(m.pk)",
        )
        worker, worker_log = start(tmp_path, env, name="worker")
        schedule, schedule_log = start(tmp_path, env, "schedule", "--every", "0.2", name="schedule")
        try:
            deadline = time.monotonic() + 40
            while not receiver.posts("/team"):
                assert worker.poll() is None, worker_log.read_text()
                assert time.monotonic() < deadline, worker_log.read_text()
                time.sleep(0.2)
            while "Notifications: running every 0.2 s." not in schedule_log.read_text():
                assert schedule.poll() is None, schedule_log.read_text()
                assert time.monotonic() < deadline, schedule_log.read_text()
                time.sleep(0.2)
        finally:
            codes = [stop(p) if p.poll() is None else p.returncode for p in (worker, schedule)]
        [post] = receiver.posts("/team")
        assert "test message" in post.json["title"]
        assert codes == [0, 0], worker_log.read_text() + schedule_log.read_text()
        state = manage(
            tmp_path,
            env,
            "shell",
            "-c",
            "from notifications.models import Message; print(Message.objects.get().state)",
        )
        assert state.strip().splitlines()[-1] == "sent"
    finally:
        receiver.stop()


def redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


REDIS_URL = "redis://127.0.0.1:6379/13"  # a database of its own, emptied by the test


def test_with_a_redis_queue_start_worker_sends_a_message_and_its_retry(tmp_path):
    """FLAKYBOARD_TASKS_REDIS_URL: the queue is Redis (django-tasks-rq) and bin/start-worker
    runs rq's worker with its scheduler, which also runs the retry scheduled after a 500."""
    import pytest
    import redis

    if not redis_reachable(REDIS_URL):
        if os.environ.get("FLAKYBOARD_REQUIRE_REDIS"):  # .ci/run starts one
            pytest.fail("Redis is not reachable on 127.0.0.1:6379")
        pytest.skip("needs Redis on 127.0.0.1:6379")
    redis.Redis.from_url(REDIS_URL).flushdb()
    receiver = Receiver().start()
    receiver.fail_times("/team", 1)
    try:
        env = server_env(
            tmp_path,
            free_port(),
            FLAKYBOARD_TASKS_REDIS_URL=REDIS_URL,
            FLAKYBOARD_NOTIFY_RETRY_SECONDS="1",
            WORKER_WAIT_SECONDS="0.2",
        )
        manage(tmp_path, env, "migrate", "--noinput", "-v", "0")
        manage(
            tmp_path,
            env,
            "shell",
            "-c",
            "from notifications.models import Message, Subscription; from notifications import render, sending; "
            f"s = Subscription.objects.create(name='team', destination='{receiver.url('json', '/team')}'); "
            "c = render.test_message(subscription_name='team'); "
            "m = Message.objects.create(subscription=s, kind='test', key='k', title=c.title, content=render.to_json(c)); "
            "sending.enqueue_on_commit(m.pk)",
        )
        worker, log = start(tmp_path, env, name="rqworker")
        try:
            deadline = time.monotonic() + 60
            while len(receiver.posts("/team")) < 2:
                assert worker.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        finally:
            code = stop(worker) if worker.poll() is None else worker.returncode
        assert len(receiver.posts("/team")) == 2  # refused once, then delivered by the retry
        state = manage(
            tmp_path,
            env,
            "shell",
            "-c",
            "from notifications.models import Message; print(Message.objects.get().state)",
        )
        assert state.strip().splitlines()[-1] == "sent"
        assert code in (0, -15), log.read_text()
    finally:
        receiver.stop()
        redis.Redis.from_url(REDIS_URL).flushdb()
