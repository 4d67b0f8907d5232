from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"

    def ready(self) -> None:
        from events.triage import triage_written

        from .shared_pages import forget_shared_pages

        # A triage write drops the pages shared between readers (dashboard/shared_pages.py).
        triage_written.connect(forget_shared_pages, dispatch_uid="dashboard.forget_shared_pages")
