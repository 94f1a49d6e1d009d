# The trigram indexes of migration 0011 are GIN indexes with fastupdate: new rows wait in a
# pending list that every search reads through in full until VACUUM (or 4 MB of them) merges it
# into the index. After a bulk load (seed_bench; an import) every row sat there: the list's
# search read 27,200 pending tuples per index, and the planner, costing that, scanned all of an
# organization's licenses instead (32 ms against 2.8 ms at 20,000). A 64 kB limit keeps the list
# short between vacuums (an insert that fills it merges it), and the existing lists are merged now.

from importlib import import_module

from django.db import migrations

PENDING_LIST_KB = 64
TRIGRAM_INDEXES = import_module("licensing.migrations.0011_list_search_indexes").TRIGRAM_INDEXES


def limit_pending_lists(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in TRIGRAM_INDEXES:
        schema_editor.execute(
            f'ALTER INDEX "{name}" SET (gin_pending_list_limit = {PENDING_LIST_KB})'
        )
        schema_editor.execute("SELECT gin_clean_pending_list(%s::regclass)", [name])


def reset_pending_lists(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in TRIGRAM_INDEXES:
        schema_editor.execute(f'ALTER INDEX "{name}" RESET (gin_pending_list_limit)')


class Migration(migrations.Migration):

    dependencies = [
        ("licensing", "0011_list_search_indexes"),
    ]

    operations = [
        migrations.RunPython(limit_pending_lists, reset_pending_lists),
    ]
