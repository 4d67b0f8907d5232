from django.apps import AppConfig
from django.db.models.signals import post_migrate


class EventsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "events"
    verbose_name = "Trunk events"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
        from .rollups import fill_missing_rollups

        # A database upgraded to the migration that adds the rollup tables has history
        # but no rollups yet: compute them once, after all migrations have run (so the
        # current models match the schema).
        post_migrate.connect(fill_missing_rollups, sender=self)
