"""The demo's live alert: a few HEALTHY demo tests turn FLAKY now, delivered signed through
the real receiver, so the demo's real-time subscription gets a message (one, listing them:
a burst) about a minute later. Local demo only."""

import json
import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test import RequestFactory
from svix.webhooks import Webhook

from events.demo import payloads
from events.models import Status, TestCase
from events.receiver.views import trunk_webhook

MONITOR = uuid.UUID("5d1f6a0e-0c4b-4f1e-9a2d-6d656d6f0001")


class Command(BaseCommand):
    help = "Turn a few HEALTHY demo tests FLAKY now (signed deliveries), to see a real-time alert."

    def add_arguments(self, parser):
        parser.add_argument("--tests", type=int, default=3)

    def handle(self, *args, tests=3, **options):
        if not settings.TRUNK_WEBHOOK_SECRETS:
            raise CommandError("TRUNK_WEBHOOK_SECRET is not set: the receiver would refuse the deliveries.")
        webhook = Webhook(settings.TRUNK_WEBHOOK_SECRETS[0])
        factory = RequestFactory()
        chosen = (
            TestCase.objects.filter(status=Status.HEALTHY).select_related("repository").order_by("?")[:tests]
        )
        now = datetime.now(UTC)
        for test in chosen:
            repository = test.repository
            fake = payloads.FakeTest(
                id=test.pk,
                name=test.name,
                classname=test.classname,
                file_path=test.file_path,
                repository=payloads.FakeRepository(repository.trunk_id, repository.html_url)
                if repository and repository.trunk_id
                else None,
                codeowners=list(test.codeowners or []),
                variant=test.variant,
                quarantined=test.quarantined,
            )
            body = json.dumps(
                payloads.status_changed(
                    fake,
                    at=now,
                    previous="HEALTHY",
                    new="FLAKY",
                    monitor_id=MONITOR,
                    monitor_type="failure_rate",
                )
            )
            msg_id = f"msg_demo_alert_{uuid.uuid4().hex}"
            response = trunk_webhook(
                factory.post(
                    "/webhooks/trunk/",
                    data=body.encode(),
                    content_type="application/json",
                    headers={
                        "svix-id": msg_id,
                        "svix-timestamp": str(int(now.timestamp())),
                        "svix-signature": webhook.sign(msg_id, now, body),
                    },
                )
            )
            self.stdout.write(f"{test.name}: turned FLAKY ({response.status_code})")
        self.stdout.write("The demo receiver prints the alert about a minute from now (bursts are grouped).")
