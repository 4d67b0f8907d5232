"""Fill the database with a realistic demo history, delivered through the real receiver.

Every payload is signed with the configured Svix secret and handed to
`events.receiver.views.trunk_webhook`, so the demo exercises exactly what production runs:
verification, the delivery log, dedupe by svix id, parsing and the projections.

`--bulk` is for benchmark sizes (a million deliveries would take hours through the
receiver): the same signed deliveries are stored with COPY, received shortly after their
event time, and projected by the rebuild's bulk path (`events.projection.rebuild`). Both ways give the
same deliveries and projections (tests/events/test_bulk.py).

The history ends at the start of the current day (UTC), and the svix ids carry that day:
a re-run the same day sends byte-identical messages under the same ids, which the
receiver counts as redeliveries. A run on a later day is a new history of the same demo
tests (same seed and size), sent as new messages; the earlier run's deliveries are then
removed (only they: their ids carry this demo's prefix) and every projection is rebuilt
from the delivery log, so two overlapping stories of the same tests never mix, other
deliveries are kept and projected as before, and triage survives (`rebuild_projections`).
That replacement is one transaction: it happens whole or not at all.
"""

import argparse
import contextlib
import json
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.test import RequestFactory
from django.utils import timezone
from svix.webhooks import Webhook

from events import demo, sql
from events.delivery_log import delivery_changes_allowed
from events.demo.triage import TRIAGERS, replay_triage
from events.models import Delivery, Status, TestCase
from events.projection.rebuild import rebuild_projections
from events.receiver.views import trunk_webhook
from events.trunk import parsing
from events.trunk.classify import classify

USER_AGENT = "flakyboard-seed-demo"
# Deliveries committed together. The receiver's own transaction becomes a savepoint
# inside it: same code path, but one disk sync per batch instead of one per delivery
# (on SQLite that halves the run time). A batch that fails rolls back alone; a re-run
# with the same seed fills in what is missing, the rest being redeliveries.
BATCH_SIZE = 250
# Deliveries deleted per statement when an earlier run is replaced (SQLite's variable limit).
DELETE_BATCH = 5000


def history_end() -> datetime:
    """Where the demo's history ends: the start of the current day (UTC)."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return value


class Command(BaseCommand):
    help = (
        "Generate a realistic, deterministic history of Trunk webhooks (several repositories, "
        "flaky episodes, relapses, investigations, quarantines) and deliver every payload, "
        "signed, through the real webhook receiver. The history ends today; re-running with the "
        "same arguments the same day redelivers the same svix ids and adds no data, and on a later "
        "day replaces this demo's earlier history (its deliveries only) with one ending then."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--tests", type=_positive, default=300, help="Number of test cases to generate (default: 300)."
        )
        parser.add_argument(
            "--days",
            type=_positive,
            default=120,
            help=f"Length of the history in days, ending now (default: 120, at least {demo.MIN_DAYS}).",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=42,
            help="Random seed: the same seed gives the same history (default: 42).",
        )
        parser.add_argument(
            "--repositories", type=_positive, default=4, help="Number of repositories (default: 4)."
        )
        parser.add_argument(
            "--bulk",
            action="store_true",
            help="For benchmark sizes, into an empty database: store the signed deliveries in bulk and "
            "project them with the rebuild's bulk path instead of calling the receiver for each.",
        )

    def handle(
        self, *args, tests: int, days: int, seed: int, repositories: int, bulk: bool = False, **options
    ) -> None:
        secrets = settings.TRUNK_WEBHOOK_SECRETS
        if not secrets:
            raise CommandError(
                "No webhook secret is configured: set TRUNK_WEBHOOK_SECRET (whsec_...) so the demo "
                "deliveries can be signed and verified by the receiver."
            )
        if days < demo.MIN_DAYS:
            raise CommandError(f"--days must be at least {demo.MIN_DAYS}.")
        webhook = Webhook(secrets[0])
        # The same day, the same payloads byte for byte: a re-run is a redelivery.
        now = history_end()
        started = time.monotonic()
        messages = demo.generate_history(
            now=now, tests=tests, days=days, seed=seed, repositories=repositories
        )
        size = {"seed": seed, "tests": tests, "days": days, "repositories": repositories}
        prefix = demo.message_id_prefix(**size, day=now.date())
        plan = demo.plan_deliveries(messages, seed=seed, id_prefix=prefix)
        earlier = self._earlier_runs(demo.runs_prefix(**size), today=prefix)

        by_type: Counter[str] = Counter(parsing.event_type_of(payload) for _, payload in plan)
        # Replacing an earlier run: all or nothing (a failed run leaves the earlier one whole).
        with transaction.atomic() if earlier else contextlib.nullcontext():
            if earlier:
                self._remove(earlier)
            if bulk:
                by_outcome = self._store_in_bulk(webhook, plan)  # rebuilds the projections
            else:
                by_outcome = self._deliver_all(webhook, plan)
                if earlier:
                    # The projections still hold what the removed deliveries said: project the
                    # log again (the receiver path and the rebuild give the same rows).
                    rebuild_projections()

        # People triaging the episodes and judging the investigations, at their own times,
        # through the triage service (tests and investigations triaged already are left alone).
        triaged = replay_triage(now=now, seed=seed)
        elapsed = time.monotonic() - started
        if earlier:
            self.stdout.write(
                f"Replaced this demo's earlier history ({self._days(earlier)}): removed its "
                f"{len(earlier)} deliveries and rebuilt the projections from the delivery log."
            )
        self.stdout.write(
            f"Delivered {len(plan)} webhooks ({len(messages)} messages, seed {seed}) in {elapsed:.1f} s."
        )
        self.stdout.write("Deliveries by event type:")
        for event_type, count in sorted(by_type.items()):
            self.stdout.write(f"  {event_type:<42} {count:>6}")
        self.stdout.write("Deliveries by outcome:")
        for outcome, count in sorted(by_outcome.items()):
            self.stdout.write(f"  {outcome:<42} {count:>6}")
        self.stdout.write(
            f"Triage replayed: {triaged['triage actions']} triage actions and {triaged['verdicts']} "
            f"verdicts by {', '.join(TRIAGERS)}."
        )
        statuses = Counter(TestCase.objects.values_list("status", flat=True))
        self.stdout.write(
            "Tests now: "
            + ", ".join(f"{statuses.get(s.value, 0)} {s.label.lower()}" for s in Status)
            + f" ({sum(statuses.values())} in total)."
        )
        broken = {o: by_outcome[o] for o in ("invalid", "failed", "ignored") if by_outcome[o]}
        if broken:
            raise CommandError(f"Some demo deliveries were not processed: {broken}. See Delivery.error.")
        self.stdout.write(self.style.SUCCESS("Demo data ready."))

    def _deliver_all(self, webhook: Webhook, plan: list[tuple[str, dict]]) -> Counter[str]:
        """Hand every planned delivery to the receiver, BATCH_SIZE per transaction."""
        by_outcome: Counter[str] = Counter()
        factory = RequestFactory()
        for first in range(0, len(plan), BATCH_SIZE):
            with transaction.atomic():
                for n, (msg_id, payload) in enumerate(plan[first : first + BATCH_SIZE], first + 1):
                    position = f"{n}/{len(plan)}"
                    # "processed", "ignored", "invalid", "failed", or "duplicate" for a redelivery.
                    by_outcome[self._deliver(factory, webhook, msg_id, payload, position=position)] += 1
        return by_outcome

    @staticmethod
    def _earlier_runs(runs_prefix: str, *, today: str) -> dict[int, str]:
        """{pk: svix id} of the deliveries of this demo's runs on other days. Compared in
        Python: SQLite's LIKE ignores case, and only the demo's own ids may match."""
        candidates = Delivery.objects.filter(svix_id__startswith=runs_prefix).values_list("pk", "svix_id")
        return {
            pk: svix_id
            for pk, svix_id in candidates.iterator()
            if svix_id.startswith(runs_prefix) and not svix_id.startswith(f"{today}_")
        }

    @staticmethod
    def _remove(deliveries: dict[int, str]) -> None:
        # The delivery log is append-only (a trigger on PostgreSQL): the demo's own
        # deliveries are the one thing it may remove, through the log's documented gate.
        pks = list(deliveries)
        with delivery_changes_allowed():
            for first in range(0, len(pks), DELETE_BATCH):
                Delivery.objects.filter(pk__in=pks[first : first + DELETE_BATCH]).delete()

    @staticmethod
    def _days(deliveries: dict[int, str]) -> str:
        """The days of the removed runs, from their ids (ids before the day was in them: "undated")."""
        days = set()
        for svix_id in deliveries.values():
            stamp = svix_id.split("_")[-2]
            try:
                days.add(date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:])).isoformat())
            except ValueError:
                days.add("undated")
        return ", ".join(sorted(days))

    @staticmethod
    def _store_in_bulk(webhook: Webhook, plan: list[tuple[str, dict]]) -> Counter[str]:
        """Store the plan as the receiver would have, then rebuild the projections from it.

        Each delivery is received a second after its event (a late one, right after the
        delivery before it), so received times keep the plan's order and the delivery
        log spans the history, as it would in production. A repeated svix id is counted
        as a redelivery of the stored one."""
        if Delivery.objects.exists():
            raise CommandError("--bulk fills an empty database; this one already has deliveries.")
        lag = timedelta(seconds=1)
        outcomes: Counter[str] = Counter()
        rows: dict[str, list] = {}  # svix id -> Delivery column values, in plan order
        received_at: datetime | None = None
        for msg_id, payload in plan:
            body = json.dumps(payload, ensure_ascii=False)
            # The demo's events are in the past: plausible for a delivery received now.
            now = timezone.now()
            event_type, parsed, event, outcome, error = classify(body, received_at=now)
            occurred_at = event.occurred_at if event else parsing.event_time_of(parsed, received_at=now)
            previous = received_at
            received_at = (occurred_at or previous or timezone.now()) + lag
            if previous is not None:
                received_at = max(received_at, previous + timedelta(milliseconds=1))
            if msg_id in rows:
                rows[msg_id][-2:] = [rows[msg_id][-2] + 1, received_at]
                outcomes["duplicate"] += 1
                continue
            headers = {
                "svix-id": msg_id,
                "svix-timestamp": str(int(received_at.timestamp())),
                "svix-signature": webhook.sign(msg_id, received_at, body),
                "content-type": "application/json",
            }
            processed_at = received_at if event else None
            rows[msg_id] = [msg_id, event_type, body, headers, USER_AGENT, received_at, occurred_at]
            rows[msg_id] += [outcome, error, processed_at, 0, None]
            outcomes[outcome] += 1
        columns = [
            "svix_id",
            "event_type",
            "body",
            "headers",
            "user_agent",
            "received_at",
            "occurred_at",
            "outcome",
            "error",
            "processed_at",
            "redeliveries",
            "last_redelivered_at",
        ]
        deliveries = sql.Table(Delivery, columns)
        with transaction.atomic():
            for row in rows.values():
                deliveries.add(*row)
            deliveries.flush()
        rebuild_projections()
        return outcomes

    @staticmethod
    def _deliver(
        factory: RequestFactory, webhook: Webhook, msg_id: str, payload: dict, *, position: str
    ) -> str:
        """Sign and hand one payload to the receiver view; return the outcome it reports."""
        body = json.dumps(payload, ensure_ascii=False)
        signed_at = datetime.now(UTC)
        request = factory.post(
            "/webhooks/trunk/",
            data=body.encode(),
            content_type="application/json",
            headers={
                "svix-id": msg_id,
                "svix-timestamp": str(int(signed_at.timestamp())),
                "svix-signature": webhook.sign(msg_id, signed_at, body),
                "User-Agent": USER_AGENT,
            },
        )
        response = trunk_webhook(request)
        if not 200 <= response.status_code < 300:
            raise CommandError(
                f"Delivery {position} ({msg_id}, {parsing.event_type_of(payload) or 'no type'}) was answered "
                f"{response.status_code}: {response.content.decode(errors='replace')[:500]}"
            )
        return json.loads(response.content)["status"]
