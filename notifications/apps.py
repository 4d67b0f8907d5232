from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Alerts and weekly digests to the owners of tests: subscriptions, the messages sent
    (an outbox with retries) and the destinations (apprise URLs or Django's email)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"
    verbose_name = "Notifications"
