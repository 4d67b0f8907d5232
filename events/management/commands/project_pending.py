import signal
import time

from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from events.projection.apply import TestCreatedConcurrently
from events.projection.projector import BATCH_SIZE, pause_after_batch, pending_count, project_pending


class Command(BaseCommand):
    help = (
        "Apply the deliveries the receiver stored as pending (FLAKYBOARD_DEFERRED_PROJECTION). "
        "Without --follow: until none is left. With --follow: forever, as a worker."
    )

    def add_arguments(self, parser):
        parser.add_argument("--follow", action="store_true", help="Keep running and apply new deliveries.")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="Deliveries per transaction.")
        parser.add_argument(
            "--poll", type=float, default=0.5, help="Seconds to wait when none is pending (with --follow)."
        )

    def handle(self, *args, follow=False, batch_size=BATCH_SIZE, poll=0.5, **options):
        self.stopping = False
        if follow:
            # Finish the batch in hand, then stop (docker stop, Ctrl-C).
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._stop)
            self.stdout.write(
                f"Applying pending deliveries ({pending_count()} waiting); polling every {poll} s."
            )
        total = 0
        backlog = pending_count() if follow else 0
        while not self.stopping:
            try:
                started = time.monotonic()
                applied = project_pending(batch_size=batch_size)
                batch_seconds = time.monotonic() - started
                if follow and applied:
                    # How many arrived meanwhile: a growing backlog is a burst, and the
                    # receiver gets the CPU first (events.projection.projector.pause_after_batch).
                    before, backlog = backlog, pending_count()
                    arrived = backlog - max(before - applied, 0)
                    time.sleep(
                        pause_after_batch(applied=applied, arrived=arrived, batch_seconds=batch_seconds)
                    )
            except TestCreatedConcurrently:
                # Three tries in a row met another transaction's change under the batch
                # (rare: on PostgreSQL new tests are claimed before they are created, so
                # only a claimed test found locked or an investigation moved to another
                # test; on SQLite, never): nothing was lost
                # (the batch rolled back, its deliveries are still pending) and the next
                # try finds the change. Retry, also without --follow (several projectors
                # draining one backlog).
                close_old_connections()
                time.sleep(0.1)
                continue
            except DatabaseError as exc:
                # Database down, or a deadlock with another writer: nothing was lost (the
                # batch rolled back, its deliveries are still pending). Retry.
                if not follow:
                    raise
                self.stderr.write(f"Projection paused: {exc}")
                close_old_connections()
                time.sleep(max(poll, 1.0))
                continue
            total += applied
            if applied:
                continue
            if not follow:
                break
            backlog = 0
            time.sleep(poll)
        self.stdout.write(self.style.SUCCESS(f"Applied {total} pending deliveries."))

    def _stop(self, signum, frame):
        self.stopping = True
