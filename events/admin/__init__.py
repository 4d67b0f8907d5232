"""The Django admin: triage flaky tests, and inspect what Trunk actually sent.

One module per model family; importing them registers their model admins (Django
autodiscovers `events.admin`). The big change lists (test cases, deliveries, history
rows) are built for 100,000+ rows: a fixed number of queries per page whatever the
number of rows (related rows joined or prefetched, the latest investigation as a
subquery), filters answered by indexes, and an estimated count for an unfiltered list
on PostgreSQL (`helpers.EstimatedCountPaginator`).
"""

from django.contrib import admin

from . import deliveries, history, investigations, monitors, repositories, tests, triage
from .deliveries import DeliveryAdmin
from .tests import TestCaseAdmin

admin.site.site_header = "flakyboard admin"
admin.site.site_title = "flakyboard admin"
admin.site.index_title = "Triage and Trunk data"
# The test case list is wide (eleven columns): give it the whole window.
admin.site.enable_nav_sidebar = False

__all__ = [
    "DeliveryAdmin",
    "TestCaseAdmin",
    "deliveries",
    "history",
    "investigations",
    "monitors",
    "repositories",
    "tests",
    "triage",
]
