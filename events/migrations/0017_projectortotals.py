"""Every projector's totals (batches, deliveries, errors) in one row, for `/metrics`: a
projector in its own container or on another host has no `/metrics` of its own."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0016_episode_open_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="ProjectorTotals",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("batches", models.BigIntegerField(default=0)),
                ("deliveries", models.BigIntegerField(default=0)),
                ("errors", models.BigIntegerField(default=0)),
            ],
            options={
                "verbose_name_plural": "projector totals",
            },
        ),
    ]
