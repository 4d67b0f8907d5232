from django.apps import AppConfig


class EventsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "events"
    verbose_name = "Trunk events"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks

        # No post_migrate hook. There used to be one (fill_missing_rollups) that computed
        # the rollups with today's code after every `migrate`; it broke any migrate to an
        # earlier state (its tables or columns do not exist there), and would run a full
        # rebuild inside a server's start. Since the migrations were squashed, no
        # database reaches "history without rollups" by migrating: 0001 creates the
        # rollup tables with the history tables. A later migration that adds a rollup
        # fills it with its own frozen SQL, or the release says to run
        # `manage.py rebuild_projections` (the explicit tool that refills every rollup).
