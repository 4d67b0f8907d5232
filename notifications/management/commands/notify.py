import signal
import time

from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from notifications.dispatch import tick


class Command(BaseCommand):
    help = (
        "Notifications' schedule: record the alerts that come with time, match new alerts to "
        "subscriptions, group bursts into messages, queue the weekly digests and recover lost "
        "sends. The task workers (manage.py db_worker) send. Without --follow: once. With "
        "--follow: every --every seconds, forever."
    )

    def add_arguments(self, parser):
        parser.add_argument("--follow", action="store_true", help="Keep running.")
        parser.add_argument("--every", type=float, default=10.0, help="Seconds between runs (with --follow).")

    def handle(self, *args, follow=False, every=10.0, **options):
        self.stopping = False
        if follow:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._stop)
            self.stdout.write(f"Notifications: running every {every} s.")
        while not self.stopping:
            try:
                result = tick(now=timezone.now())
            except DatabaseError as exc:
                if not follow:
                    raise
                # The database is down or a statement failed: nothing is lost (alerts stay
                # undispatched, notices ungrouped). Try again next time.
                self.stderr.write(f"Notifications paused: {exc}")
                close_old_connections()
                time.sleep(every)
                continue
            if not follow or result.messages or result.digests:
                self.stdout.write(
                    f"alerts recorded {result.recorded}, dispatched {result.dispatched}; "
                    f"messages {result.messages}, digests {result.digests}, requeued {result.requeued}"
                )
            if not follow:
                break
            time.sleep(every)

    def _stop(self, signum, frame):
        self.stopping = True
