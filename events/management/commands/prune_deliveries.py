import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from events.retention import PRUNABLE_OUTCOMES, prune_deliveries

DURATION = re.compile(r"^(\d{1,6})([dh]?)$")


def duration(value: str) -> timedelta:
    """`180d` (days, also a bare number) or `12h` (hours)."""
    match = DURATION.match(value.strip().lower())
    if not match:
        raise CommandError(f"--older-than: {value!r} is not a duration such as 180d or 12h.")
    number, unit = int(match.group(1)), match.group(2) or "d"
    return timedelta(hours=number) if unit == "h" else timedelta(days=number)


class Command(BaseCommand):
    help = (
        "Drop the raw bodies and headers of old processed deliveries (retention). Their rows and "
        "everything projected from them stay; they can no longer be replayed. A dry run unless --apply."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", required=True, help="Received before now minus this: 180d, 12h.")
        parser.add_argument(
            "--apply", action="store_true", help="Prune (without it: only say what would go)."
        )

    def handle(self, *args, older_than: str, apply: bool = False, **options):
        report = prune_deliveries(older_than=duration(older_than), now=timezone.now(), apply=apply)
        outcomes = ", ".join(PRUNABLE_OUTCOMES)
        what = (
            f"{report.deliveries} deliveries ({outcomes}) received before {report.cutoff:%Y-%m-%d %H:%M} UTC, "
            f"{report.body_bytes / 1_000_000:.1f} MB of bodies"
        )
        if not apply:
            self.stdout.write(f"Dry run: would prune {what}. Run again with --apply to prune.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Pruned {what}. A rebuild now needs --replayable-only (what they projected would go)."
            )
        )
