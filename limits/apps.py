from django.apps import AppConfig
from django.db.models.signals import post_migrate


class LimitsConfig(AppConfig):
    name = "limits"
    verbose_name = "Request limits"

    def ready(self) -> None:
        from .cache_tables import create_cache_tables

        # Why post_migrate and not a migration or a start-script step: every place that
        # runs the app already runs `migrate` (bin/start-server, `make demo`, a release
        # step, the test databases), so the throttle cache table exists wherever the
        # schema does. `createcachetable` reads CACHES at that moment and is idempotent,
        # so a table renamed through FLAKYBOARD_THROTTLE_CACHE_URL is created by the
        # next migrate; a migration would have frozen the name of the day.
        post_migrate.connect(create_cache_tables, sender=self, dispatch_uid="limits.create_cache_tables")
