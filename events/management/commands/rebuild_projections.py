from django.core.management.base import BaseCommand

from events.projection.rebuild import rebuild_projections


class Command(BaseCommand):
    help = "Delete all projected rows and replay every stored delivery (triage data is kept)."

    def handle(self, *args, **options):
        outcomes = rebuild_projections(progress=lambda n: self.stdout.write(f"  {n} deliveries replayed"))
        summary = (
            ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items())) or "no deliveries"
        )
        self.stdout.write(self.style.SUCCESS(f"Rebuilt projections: {summary}."))
