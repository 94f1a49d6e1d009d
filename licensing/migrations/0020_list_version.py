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

COUNT = """
CREATE OR REPLACE FUNCTION licensing_list_count(organization bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF organization IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO licensing_listversion AS counted (organization_id, version, xact)
    VALUES (organization, 1, pg_current_xact_id()::text::bigint)
    ON CONFLICT (organization_id) DO UPDATE
        SET version = counted.version + 1, xact = excluded.xact
        WHERE counted.xact <> excluded.xact;
END
$$
"""


CATALOG = {"licensing_product", "licensing_productversion"}


def _trigger_sql(table: str, expressions: tuple[str, ...]) -> list[str]:
    old = "\n".join(
        f"        PERFORM licensing_list_count({e.format(row='OLD')});" for e in expressions
    )
    new = "\n".join(
        f"        PERFORM licensing_list_count({e.format(row='NEW')});" for e in expressions
    )
    return [
        f"""
CREATE OR REPLACE FUNCTION {table}_list_changed() RETURNS trigger LANGUAGE plpgsql AS $$
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
        f"DROP TRIGGER IF EXISTS {table}_list_changed ON {table}",
        # Deferred to the commit: the count's row is locked for the commit alone, after every
        # other lock the transaction takes, so writers of one organization never wait on each
        # other longer than a commit, and never deadlock on it.
        f"""
CREATE CONSTRAINT TRIGGER {table}_list_changed
AFTER {"UPDATE OR DELETE" if table in CATALOG else "INSERT OR UPDATE OR DELETE"} ON {table}
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION {table}_list_changed()
""",
    ]


def create_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return  # the list's page cache is off elsewhere
    schema_editor.execute(COUNT)
    for table, expressions in WATCHED.items():
        for statement in _trigger_sql(table, expressions):
            schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in WATCHED:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_list_changed ON {table}")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {table}_list_changed()")
    schema_editor.execute("DROP FUNCTION IF EXISTS licensing_list_count(bigint)")


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
