"""A partial index on each test's open episode (ended_at IS NULL), newest start first:
the impact score's open-episode start (Fix first, `sort=-impact`) is then one
index-only read per FLAKY or BROKEN test instead of reading every episode of the test
(about 13 % of those queries at 58k tests)."""


from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0015_delivery_unhealthy_monitorstate_active"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="episode",
            index=models.Index(
                condition=models.Q(("ended_at__isnull", True)),
                fields=["test_case", "-started_at"],
                name="episode_open_idx",
            ),
        ),
    ]
