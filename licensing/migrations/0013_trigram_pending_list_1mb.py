# Migration 0012 limited the trigram indexes' pending lists to 64 kB so that a search never reads
# through a long one (PostgreSQL's default is 4 MB). At 64 kB a bulk insert merges the list into
# the index every few dozen rows: on the bench database at 100,000 licenses, inserting 10,000 more
# (20 INSERTs of 500, as a 10,000-voucher conversion does) took 3.2–4.0 s at 64 kB, 2.1–2.2 s at
# 1 MB and 1.4–1.9 s at 4 MB, while the list's text search (q=host-00042, the large organization,
# its bitmap plan unchanged in every case) read a pending list left full by them in 1.6, 4.8 and
# 8.1 ms. 1 MB keeps most of the insert saving and bounds a search's extra read to ~3 ms (of a
# ~85 ms page) in the worst case, until VACUUM or the next merge empties the list.

from importlib import import_module

from django.db import migrations

PENDING_LIST_KB = 1024
PREVIOUS_KB = import_module("licensing.migrations.0012_trigram_pending_list").PENDING_LIST_KB
TRIGRAM_INDEXES = import_module("licensing.migrations.0011_list_search_indexes").TRIGRAM_INDEXES


def _limit(schema_editor, kilobytes: int) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in TRIGRAM_INDEXES:
        schema_editor.execute(f'ALTER INDEX "{name}" SET (gin_pending_list_limit = {kilobytes})')


def raise_limit(apps, schema_editor):
    _limit(schema_editor, PENDING_LIST_KB)


def restore_limit(apps, schema_editor):
    _limit(schema_editor, PREVIOUS_KB)


class Migration(migrations.Migration):
    dependencies = [
        ("licensing", "0012_trigram_pending_list"),
    ]

    operations = [
        migrations.RunPython(raise_limit, restore_limit),
    ]
