"""Data migration: triagers may view the verdicts, the triage history and the owners'
targets (0002's rule: a model triagers should see gets its view permission from its own
migration). Setting a verdict is triage (the `change_testcase` permission they have);
changing owners' targets is left to administrators."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "triager"
CODENAMES = ["view_investigationverdict", "view_triageevent", "view_ownertarget"]


def add_views(apps, schema_editor):
    using = schema_editor.connection.alias
    app_config = apps.get_app_config("events")
    original = getattr(app_config, "models_module", None)
    app_config.models_module = original or True
    try:
        create_permissions(app_config, apps=apps, using=using, verbosity=0)
    finally:
        app_config.models_module = original
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(using).get_or_create(name=GROUP)
    group.permissions.add(
        *Permission.objects.using(using).filter(content_type__app_label="events", codename__in=CODENAMES)
    )


class Migration(migrations.Migration):
    dependencies = [("events", "0006_fixes_quarantine_verdicts_targets")]

    operations = [migrations.RunPython(add_views, migrations.RunPython.noop)]
