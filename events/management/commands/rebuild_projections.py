from django.core.management.base import BaseCommand, CommandError

from events.projection.rebuild import rebuild_projections
from events.retention import NotReplayable


class Command(BaseCommand):
    help = "Delete all projected rows and replay every stored delivery (triage data is kept)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--replayable-only",
            action="store_true",
            help="After prune_deliveries: rebuild from the deliveries that still have their body; "
            "what the pruned ones projected is lost.",
        )

    def handle(self, *args, replayable_only=False, **options):
        try:
            outcomes = rebuild_projections(
                progress=lambda n: self.stdout.write(f"  {n} deliveries replayed"),
                replayable_only=replayable_only,
            )
        except NotReplayable as exc:
            raise CommandError(str(exc)) from exc
        summary = (
            ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items())) or "no deliveries"
        )
        self.stdout.write(self.style.SUCCESS(f"Rebuilt projections: {summary}."))
