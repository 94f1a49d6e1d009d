"""The count of changes to each organization's My licenses, kept by PostgreSQL triggers."""

from django.db import migrations, models


# What My licenses shows, table by table: the organization whose list a changed row is in.
# Organization 0 is the catalog (product and version names are in every list): counted when a
# product or version changes or goes, not when one is added (a list shows only the versions of
# its licenses, and a new license counts for its owner). Kept here, not imported, so that this
# migration does what it did when it ran (licensing/listcache.py).
WATCHED = {
    "licensing_license": ("{row}.owner_id",),
    "licensing_serialnumber": (
        "(SELECT owner_id FROM licensing_license WHERE id = {row}.license_id)",
    ),
    "licensing_supportregistration": ("{row}.organization_id",),
    "licensing_customfield": ("{row}.organization_id",),
    "licensing_customfieldvalue": (
        "(SELECT owner_id FROM licensing_license WHERE id = {row}.license_id)",
    ),
    "licensing_licenseshare": (
        "(SELECT owner_id FROM licensing_license WHERE id = {row}.license_id)",
    ),
    "licensing_product": ("0",),
    "licensing_productversion": ("0",),
    "portal_organization": ("{row}.id",),
}

# Each changed row names its organization at once, in a setting of the transaction (undone
# with it, and with a rolled-back savepoint); nothing is locked yet.
TOUCH = """
CREATE OR REPLACE FUNCTION licensing_list_touch(organization bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    touched text := coalesce(current_setting('licensing.list_touched', true), '');
BEGIN
    IF organization IS NULL OR strpos(touched, ',' || organization || ',') > 0 THEN
        RETURN;
    END IF;
    PERFORM set_config(
        'licensing.list_touched',
        CASE WHEN touched = '' THEN ',' ELSE touched END || organization || ',',
        true
    );
END
$$
"""

# At commit (a deferred trigger), the first row's trigger counts every organization named, in
# one statement and in the organizations' order: the count rows are locked for the commit alone,
# after every other lock the transaction takes, and always in the same order, so writers never
# wait for one another in a cycle (two staff actions over the same organizations in opposite
# orders deadlocked when each row counted its own). A transaction counts once per organization;
# its id, never used again, is what the list's cache key holds.
COUNT = """
CREATE OR REPLACE FUNCTION licensing_list_count() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    touched text := coalesce(current_setting('licensing.list_touched', true), '');
BEGIN
    IF touched = '' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('licensing.list_touched', '', true);
    INSERT INTO licensing_listversion AS counted (organization_id, version, xact)
    SELECT organization::bigint, 1, pg_current_xact_id()::text::bigint
    FROM unnest(string_to_array(trim(BOTH ',' FROM touched), ',')) AS organization
    ORDER BY 1
    ON CONFLICT (organization_id) DO UPDATE
        SET version = counted.version + 1, xact = excluded.xact
        WHERE counted.xact <> excluded.xact;
    RETURN NULL;
END
$$
"""


CATALOG = {"licensing_product", "licensing_productversion"}


def _trigger_sql(table: str, expressions: tuple[str, ...]) -> list[str]:
    old = "\n".join(
        f"        PERFORM licensing_list_touch({e.format(row='OLD')});" for e in expressions
    )
    new = "\n".join(
        f"        PERFORM licensing_list_touch({e.format(row='NEW')});" for e in expressions
    )
    events = "UPDATE OR DELETE" if table in CATALOG else "INSERT OR UPDATE OR DELETE"
    return [
        f"""
CREATE OR REPLACE FUNCTION {table}_list_touched() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
{old}
    END IF;
    IF TG_OP <> 'DELETE' THEN
{new}
    END IF;
    RETURN NULL;
END
$$
""",
        f"DROP TRIGGER IF EXISTS {table}_list_touched ON {table}",
        f"""
CREATE TRIGGER {table}_list_touched AFTER {events} ON {table}
FOR EACH ROW EXECUTE FUNCTION {table}_list_touched()
""",
        f"DROP TRIGGER IF EXISTS {table}_list_changed ON {table}",
        f"""
CREATE CONSTRAINT TRIGGER {table}_list_changed AFTER {events} ON {table}
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION licensing_list_count()
""",
    ]


def create_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return  # the list's page cache is off elsewhere
    schema_editor.execute(TOUCH)
    schema_editor.execute(COUNT)
    for table, expressions in WATCHED.items():
        for statement in _trigger_sql(table, expressions):
            schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in WATCHED:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_list_changed ON {table}")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_list_touched ON {table}")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {table}_list_touched()")
    schema_editor.execute("DROP FUNCTION IF EXISTS licensing_list_count()")
    schema_editor.execute("DROP FUNCTION IF EXISTS licensing_list_touch(bigint)")


class Migration(migrations.Migration):
    dependencies = [
        ("licensing", "0019_license_earlier_maintenance_period"),
    ]

    operations = [
        migrations.CreateModel(
            name="ListVersion",
            fields=[
                ("organization_id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("version", models.BigIntegerField(default=0)),
                ("xact", models.BigIntegerField(default=0)),
            ],
            options={
                "verbose_name": "license list version",
                "verbose_name_plural": "license list versions",
                "default_permissions": (),
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
