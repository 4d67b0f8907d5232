"""Indexes for list pages and their counts (see the comments in events/models.py).

- investigation (occurred_at, confidence): the confidence histogram and the per-day
  series of a period read the index alone instead of the wide rows.
- testcase (repository, status, quarantined): per-repository counts (API and admin
  repository lists) are index-only scans instead of a join over every test.

Both tables are small next to the delivery log (tens of thousands of rows at L), so a
plain CREATE INDEX takes well under a second.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0005_monitor_rollups"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="investigation",
            index=models.Index(fields=["occurred_at", "confidence"], name="investigation_time_conf_idx"),
        ),
        migrations.AddIndex(
            model_name="testcase",
            index=models.Index(
                fields=["repository", "status", "quarantined"], name="testcase_repository_status_idx"
            ),
        ),
    ]
