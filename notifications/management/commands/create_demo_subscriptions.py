from django.core.management.base import BaseCommand

from notifications.destinations import masked
from notifications.models import Subscription


class Command(BaseCommand):
    help = (
        "The demo's subscriptions: every alert, and a weekly digest, to the demo receiver "
        "(manage.py demo_receiver). Kept if they exist."
    )

    def add_arguments(self, parser):
        parser.add_argument("--receiver-port", type=int, default=8025)

    def handle(self, *args, receiver_port=8025, **options):
        for name, mode, path in (
            ("Demo: every alert", Subscription.Mode.REALTIME, "alerts"),
            ("Demo: weekly digest", Subscription.Mode.DIGEST, "digest"),
        ):
            url = f"json://127.0.0.1:{receiver_port}/{path}"
            Subscription.objects.update_or_create(
                name=name, defaults={"mode": mode, "destination": url, "destination_hint": masked(url)}
            )
        self.stdout.write(
            f"Subscriptions send to the demo receiver on 127.0.0.1:{receiver_port}; to try Slack, add one "
            "in the admin (Notifications > Subscriptions) with your slack://... URL."
        )
