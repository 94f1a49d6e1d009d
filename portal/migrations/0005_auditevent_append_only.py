"""On PostgreSQL the database itself keeps the audit trail append-only.

AuditEvent.save/delete refuse in Python, but a queryset update() or delete(), raw SQL or a
compromised account with table access would not go through them. The trigger refuses UPDATE and
DELETE of rows; the one update it lets through is the database nulling a foreign key when the
user or organization it names is deleted (on_delete=SET_NULL), which keeps the event and the
actor's email. TRUNCATE is left to the table owner (test databases are emptied with it).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION portal_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.id = OLD.id
       AND NEW.created_at = OLD.created_at
       AND NEW.action = OLD.action
       AND NEW.actor_email = OLD.actor_email
       AND NEW.object_type = OLD.object_type
       AND NEW.object_id = OLD.object_id
       AND NEW.details = OLD.details
       AND (NEW.actor_id IS NULL OR NEW.actor_id = OLD.actor_id)
       AND (NEW.organization_id IS NULL OR NEW.organization_id = OLD.organization_id)
       AND (NEW.acting_for_id IS NULL OR NEW.acting_for_id = OLD.acting_for_id)
    THEN
        RETURN NEW;  -- ON DELETE SET NULL of a referenced user or organization
    END IF;
    RAISE EXCEPTION 'portal_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER portal_auditevent_append_only
    BEFORE UPDATE OR DELETE ON portal_auditevent
    FOR EACH ROW EXECUTE FUNCTION portal_auditevent_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS portal_auditevent_append_only ON portal_auditevent;
DROP FUNCTION IF EXISTS portal_auditevent_append_only();
"""


class PostgreSQLOnlyRunSQL(migrations.RunSQL):
    """RunSQL that does nothing on other databases (SQLite has no such trigger language)."""

    def database_forwards(self, app_label: str, schema_editor: Any, *args: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, *args)

    def database_backwards(self, app_label: str, schema_editor: Any, *args: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, *args)


class Migration(migrations.Migration):
    dependencies = [("portal", "0004_outbox_lease_and_code_attempts")]

    operations = [PostgreSQLOnlyRunSQL(FORWARD, BACKWARD)]
