from django.apps import AppConfig


class EventsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "events"
    verbose_name = "Trunk events"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
