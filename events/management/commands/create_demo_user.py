from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "flakyboard-demo"  # noqa: S105 - a documented demo login, local only


class Command(BaseCommand):
    help = "Create (or reset) the demo login, a superuser, and print it. For the local demo only."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="the port the demo server listens on")

    def handle(self, *args, **options):
        base = f"http://127.0.0.1:{options['port']}/"
        user, _ = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        user.is_staff = user.is_superuser = True
        user.set_password(DEMO_PASSWORD)
        user.save()
        self.stdout.write(
            self.style.SUCCESS(
                f"\nDemo login: user {DEMO_USERNAME!r}, password {DEMO_PASSWORD!r}\n"
                f"Open {base} (dashboard) or {base}admin/\n"
            )
        )
