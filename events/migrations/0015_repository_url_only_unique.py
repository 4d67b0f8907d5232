from django.db import migrations, models

# Concurrent first deliveries of one repository named by URL only could each create a
# row. Merge such duplicates into the oldest row (tests move to it) before the unique
# constraint that prevents them from now on. The Trunk id's uniqueness becomes a partial
# index, which foreign keys cannot use: giving a URL-only row its Trunk id then takes a
# plain row lock, compatible with the deferred foreign key checks of referencing tests.
MERGE_DUPLICATES = [
    """
    UPDATE events_testcase SET repository_id = (
        SELECT MIN(keep.id) FROM events_repository keep JOIN events_repository dup ON dup.html_url = keep.html_url
         WHERE dup.id = events_testcase.repository_id AND keep.trunk_id IS NULL)
     WHERE repository_id IN (
        SELECT dup.id FROM events_repository dup
         WHERE dup.trunk_id IS NULL AND EXISTS (
             SELECT 1 FROM events_repository keep
              WHERE keep.trunk_id IS NULL AND keep.html_url = dup.html_url AND keep.id < dup.id))
    """,
    """
    DELETE FROM events_repository
     WHERE trunk_id IS NULL AND EXISTS (
         SELECT 1 FROM events_repository keep
          WHERE keep.trunk_id IS NULL AND keep.html_url = events_repository.html_url
            AND keep.id < events_repository.id)
    """,
]


class Migration(migrations.Migration):

    dependencies = [
        ('events', '0014_investigation_rollups'),
    ]

    operations = [
        migrations.RunSQL(MERGE_DUPLICATES, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name='repository',
            name='trunk_id',
            field=models.UUIDField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name='repository',
            constraint=models.UniqueConstraint(
                condition=models.Q(('trunk_id__isnull', False)), fields=('trunk_id',), name='repository_trunk_id_unique'
            ),
        ),
        migrations.AddConstraint(
            model_name='repository',
            constraint=models.UniqueConstraint(
                condition=models.Q(('trunk_id__isnull', True)), fields=('html_url',), name='repository_url_only_unique'
            ),
        ),
    ]
