"""The delivery log is append-only in the database too (PostgreSQL).

A trigger refuses, row by row:
- DELETE of a delivery;
- UPDATE that changes what was received: `id`, `svix_id`, `body`, `raw_body`, `headers`,
  `user_agent`, `received_at`.
The app's own writes stay allowed: what processing decides (`event_type`, `occurred_at`,
`outcome`, `error`, `processed_at`) and the redelivery count (`redeliveries`,
`last_redelivered_at`); a `save()` that writes every column with the same values passes
too (the columns are compared, not named in the statement).

A retention job lifts it for one transaction with the session variable below (any role
can set it; README "Operating"): `SET LOCAL flakyboard.allow_delivery_changes = on`.
It guards against mistakes (an ORM `.delete()`, a bug, a careless data migration), not
against the database owner, who can drop the trigger. TRUNCATE fires no row trigger:
it needs the table's owner (or the TRUNCATE privilege) and is what the test suite's
flush uses between tests.

The columns are compared inside the function rather than listed in `UPDATE OF ... WHEN`:
PostgreSQL refuses to ALTER the type of a column named in a trigger's definition, which
would make a later migration of those columns fail.

SQLite (development, tests) has no such guard: the application never writes those
columns, and the admin refuses it on every database. Frozen SQL: no live code.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION events_delivery_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('flakyboard.allow_delivery_changes', true) = 'on' THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'events_delivery is append-only: DELETE of delivery % refused', OLD.svix_id
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'A retention job runs SET LOCAL flakyboard.allow_delivery_changes = on first.';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id
       OR NEW.svix_id IS DISTINCT FROM OLD.svix_id
       OR NEW.body IS DISTINCT FROM OLD.body
       OR NEW.raw_body IS DISTINCT FROM OLD.raw_body
       OR NEW.headers IS DISTINCT FROM OLD.headers
       OR NEW.user_agent IS DISTINCT FROM OLD.user_agent
       OR NEW.received_at IS DISTINCT FROM OLD.received_at THEN
        RAISE EXCEPTION 'events_delivery is append-only: UPDATE of what delivery % received refused', OLD.svix_id
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Only event_type, occurred_at, outcome, error, processed_at and the redelivery count change.';
    END IF;
    RETURN NEW;
END
$$;
"""
TRIGGER = """
CREATE TRIGGER events_delivery_append_only
BEFORE UPDATE OR DELETE ON events_delivery
FOR EACH ROW EXECUTE FUNCTION events_delivery_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS events_delivery_append_only ON events_delivery;
DROP FUNCTION IF EXISTS events_delivery_append_only();
"""


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # params=None: the SQL's own % (RAISE's placeholders) is not a query parameter.
        schema_editor.execute(FUNCTION, params=None)
        schema_editor.execute(TRIGGER, params=None)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("events", "0003_testcase_recent_change_index")]

    operations = [migrations.RunPython(create_trigger, drop_trigger)]
