"""Operators' view: /metrics (Prometheus, off by default, a bearer token), /readyz with
the backlog, and the svix id on every log line written while a delivery is received."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import OperationalError, connection
from django.db.models import F
from prometheus_client.parser import text_string_to_metric_families

from events.demo import payloads
from events.models import Delivery, ProjectorTotals
from events.projection import projector
from tests.events.factories import MONITOR, at, fake_test

pytestmark = pytest.mark.django_db

TOKEN = "metrics-t0ken"


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def status_change(n: int = 1) -> dict:
    return payloads.status_changed(
        fake_test(n), at=at(3), previous="HEALTHY", new="FLAKY", monitor_id=MONITOR, monitor_type="x"
    )


def test_metrics_are_off_without_a_token_and_need_it_when_on(client, settings):
    settings.FLAKYBOARD_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    settings.FLAKYBOARD_METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_deliveries_are_counted_by_type_and_outcome_with_redeliveries_and_latency(
    client, settings, signed_post
):
    settings.FLAKYBOARD_METRICS_TOKEN = TOKEN
    before = scrape(client)
    key = ("flakyboard_deliveries_total", (("outcome", "processed"), ("type", "v2.test_case.status_changed")))
    signed_post(status_change(1), msg_id="msg_m1")
    signed_post(status_change(1), msg_id="msg_m1")  # a redelivery
    hostile = dict(status_change(2), type="made.up.type." + "x" * 50)
    signed_post(hostile)
    after = scrape(client)
    assert after[key] - before.get(key, 0) == 1
    duplicate = ("flakyboard_deliveries_total", (("outcome", "duplicate"), ("type", "other")))
    assert after[duplicate] - before.get(duplicate, 0) == 1
    assert (
        after[("flakyboard_redeliveries_total", ())] - before.get(("flakyboard_redeliveries_total", ()), 0)
        == 1
    )
    # An unknown type is one label, "other", whatever it says.
    assert not any("made.up" in str(labels) for _, labels in after)
    count = ("flakyboard_receiver_seconds_count", ())
    assert after[count] - before.get(count, 0) == 3


def test_the_backlog_and_the_outbox_are_read_at_each_scrape(client, settings, signed_post):
    settings.FLAKYBOARD_METRICS_TOKEN = TOKEN
    settings.FLAKYBOARD_DEFERRED_PROJECTION = True
    signed_post(status_change(1))
    signed_post(status_change(2))
    samples = scrape(client)
    assert samples[("flakyboard_pending_deliveries", ())] == 2
    assert samples[("flakyboard_oldest_pending_seconds", ())] >= 0
    assert samples[("flakyboard_notification_messages", (("state", "failed"),))] == 0
    ready = client.get("/readyz").json()
    assert ready["status"] == "ok" and ready["backlog"]["pending"] == 2


def test_every_projectors_work_is_counted_in_the_database_and_scraped(
    client, settings, signed_post, monkeypatch, django_capture_on_commit_callbacks
):
    """The projectors' totals live in one row (events.models.ProjectorTotals), so /metrics
    shows a projector that runs in another container or on another host."""
    settings.FLAKYBOARD_METRICS_TOKEN = TOKEN
    settings.FLAKYBOARD_DEFERRED_PROJECTION = True

    def added(name: str) -> float:
        key = (f"flakyboard_projector_{name}_total", ())
        return scrape(client)[key] - before[key]

    before = scrape(client)
    for n in (1, 2, 3):
        signed_post(status_change(n))
    # Counted once the batch's transaction commits (here: the test's, which never does).
    with django_capture_on_commit_callbacks(execute=True):
        assert projector.project_pending(batch_size=2) == 2
        assert projector.project_pending(batch_size=2) == 1
    assert (added("batches"), added("deliveries"), added("errors")) == (2, 3, 0)

    # A delivery that fails to apply: its batch fails (an error), then it is marked failed alone.
    signed_post(status_change(4))

    def broken(*args, **kwargs):
        raise RuntimeError("a projection bug")

    monkeypatch.setattr(projector, "apply_events", broken)
    with django_capture_on_commit_callbacks(execute=True):
        assert projector.project_pending() == 1
    assert added("errors") == 1  # the batch; the delivery then applied alone is marked failed
    monkeypatch.undo()

    # Another host's projector adds to the same row.
    ProjectorTotals.objects.filter(pk=ProjectorTotals.SINGLETON).update(batches=F("batches") + 10)
    assert added("batches") == 2 + 1 + 10


def test_a_projector_whose_totals_cannot_be_written_still_applies_its_batch(
    settings, signed_post, caplog, django_capture_on_commit_callbacks
):
    settings.FLAKYBOARD_DEFERRED_PROJECTION = True
    signed_post(status_change(1))

    def totals_fail(execute, sql, params, many, context):
        if "events_projectortotals" in sql:
            raise OperationalError("the totals' table is locked")
        return execute(sql, params, many, context)

    with (
        connection.execute_wrapper(totals_fail),
        caplog.at_level(logging.WARNING),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert projector.project_pending() == 1
    assert Delivery.objects.get().outcome == Delivery.Outcome.PROCESSED
    assert "projector totals not counted" in caplog.text


def test_every_line_written_while_receiving_carries_the_svix_id(signed_post, caplog):
    with caplog.at_level(logging.INFO):
        signed_post(status_change(1), msg_id="msg_logged_1")
    lines = [r for r in caplog.records if r.name.startswith("events.receiver")]
    assert lines and all(getattr(r, "svix_id", "") == "msg_logged_1" for r in lines)


def test_json_logs_are_one_object_per_line_with_the_svix_id(capsys):
    from pythonjsonlogger.json import JsonFormatter

    from flakyboard.observability import SvixIdFilter, svix_id_var

    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(svix_id)s"))
    handler.addFilter(SvixIdFilter())
    logger = logging.getLogger("flakyboard.test.json")
    logger.addHandler(handler)
    token = svix_id_var.set("msg_json_1")
    try:
        logger.warning("stored")
    finally:
        svix_id_var.reset(token)
        logger.removeHandler(handler)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (line["message"], line["svix_id"]) == ("stored", "msg_json_1")


def test_the_servers_workers_add_up_in_metrics_and_logs_can_be_json(tmp_path):
    """bin/start-server with a token: gunicorn's workers (processes) count into one
    multiprocess directory; DJANGO_LOG_FORMAT=json writes JSON lines with the svix id."""
    from tests.conftest import WEBHOOK_URL, svix_headers
    from tests.test_deploy import start_server

    env = {"FLAKYBOARD_METRICS_TOKEN": TOKEN, "WEB_CONCURRENCY": "2", "DJANGO_LOG_FORMAT": "json"}
    with start_server(tmp_path, **env) as server:
        for n in range(6):
            body = json.dumps(status_change(n + 1))
            headers = {"Content-Type": "application/json", **svix_headers(body, msg_id=f"msg_mp_{n}")}
            assert server.request("POST", WEBHOOK_URL, body=body.encode(), headers=headers).status == 200
        response = server.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status == 200
        text = response.body.decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        processed = [
            s.value
            for s in families["flakyboard_deliveries"].samples
            if s.name.endswith("_total") and s.labels.get("outcome") == "pending"  # fast by default
        ]
        assert sum(processed) == 6
        log = server.output()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    receipts = [r for r in records if r.get("logger") == "events.receiver.views"]
    assert {r["svix_id"] for r in receipts} == {f"msg_mp_{n}" for n in range(6)}
