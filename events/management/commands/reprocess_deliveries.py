from django.core.management.base import BaseCommand, CommandError

from events.models import Delivery
from events.projection.replay import replay

RETRYABLE = [Delivery.Outcome.INVALID, Delivery.Outcome.FAILED, Delivery.Outcome.IGNORED]


class Command(BaseCommand):
    help = "Parse and apply again the deliveries with the given outcome (e.g. after an upgrade)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--status", required=True, choices=[o.value for o in RETRYABLE], help="Outcome to retry."
        )
        parser.add_argument("--type", dest="event_type", help="Only deliveries of this event type.")

    def handle(self, *args, status, event_type=None, **options):
        deliveries = Delivery.objects.filter(outcome=status).order_by("received_at", "id")
        if event_type:
            deliveries = deliveries.filter(event_type=event_type)
        if not deliveries.exists():
            self.stdout.write(f"No {status} deliveries.")
            return
        # Fix the set first: reprocessing rewrites the very column this filters on.
        outcomes = replay(
            Delivery.objects.filter(pk__in=list(deliveries.values_list("pk", flat=True))).order_by(
                "received_at", "id"
            )
        )
        summary = ", ".join(f"{n} now {o}" for o, n in sorted(outcomes.items()))
        self.stdout.write(self.style.SUCCESS(f"Reprocessed {sum(outcomes.values())} deliveries: {summary}."))
        if outcomes.get(Delivery.Outcome.FAILED):
            raise CommandError("Some deliveries still fail to apply; see their error text.")
