"""Data migration: the `triager` group.

Triagers browse everything in the admin, change the triage fields of test cases, and
reprocess deliveries. They cannot add, change or delete anything that Trunk sent.

Permissions are normally created by a post_migrate signal, i.e. after *all*
migrations, so on a fresh database they do not exist yet when this migration runs.
`create_permissions` is called here for this app (with the historical models) so the
group always gets its permissions. The models the group may view are listed here (the
delivery log and Trunk's data, as the admin shows them; not the rollup tables, which
have no admin page): a model added later that triagers should see needs its view
permission added to the group by its own migration.

Unapplying it keeps the group: it lives in auth's tables, which stay, and may have
members and permissions an admin changed since; deleting it would lose them. Applying it
again finds the group and adds what is missing (get_or_create, add), so a database
migrated back past this migration and forward again keeps its triagers.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "triager"
VIEWED_MODELS = [
    "delivery",
    "repository",
    "owner",
    "testcase",
    "testcaseowner",
    "statuschange",
    "monitor",
    "monitorevent",
    "monitorstate",
    "investigation",
    "investigationfact",
    "quarantinechange",
]
EXTRA_PERMISSIONS = ["change_testcase", "reprocess_delivery"]


def _ensure_permissions(apps, using):
    app_config = apps.get_app_config("events")
    # Historical app configs have no models module; create_permissions skips those.
    original = getattr(app_config, "models_module", None)
    app_config.models_module = original or True
    try:
        create_permissions(app_config, apps=apps, using=using, verbosity=0)
    finally:
        app_config.models_module = original


def create_triager_group(apps, schema_editor):
    using = schema_editor.connection.alias
    _ensure_permissions(apps, using)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    codenames = [f"view_{model}" for model in VIEWED_MODELS] + EXTRA_PERMISSIONS
    permissions = Permission.objects.using(using).filter(
        content_type__app_label="events", codename__in=codenames
    )
    missing = set(codenames) - set(permissions.values_list("codename", flat=True))
    if missing:
        raise RuntimeError(f"permissions missing for the triager group: {sorted(missing)}")
    group, _ = Group.objects.using(using).get_or_create(name=GROUP)
    group.permissions.add(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_triager_group, migrations.RunPython.noop)]
