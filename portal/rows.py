"""Rows written and read without the ORM's query compiler, for the mint's hot transaction.

The mint (licensing.services.license_issue and serial_redeem) writes six rows per license. Saved
through the ORM, compiling those statements cost more than PostgreSQL took to run them, and the
mint is measured against raw psycopg writes of the same rows (bench/bench_get_a_key.py). These
helpers write model instances with one cached statement per model and the fields' own value
preparation (pre_save, get_db_prep_save): the same values a save would write.

What a save would also do, they do not: send pre_save/post_save signals (no receiver listens to
the models written here) and call a save() override (only AuditEvent has one, which refuses
updates; an insert is what it allows). On a database other than PostgreSQL (the embedded SQLite
default, where speed is not the point) they are the ORM's bulk_create and save.

RowQuery reads: a query of one shape (the mint's locked serial read, with its joins) compiled
once per process and database, then run with each call's parameters, its rows made into model
instances (joined ones included) as the QuerySet makes them. Compiling it took twice as long as
PostgreSQL took to answer it.

On PostgreSQL their statements are prepared once per connection (psycopg's prepare=True, the
parameters bound by the server), so PostgreSQL does not parse and plan them again per mint: in
the quick bench the mint went from 0.44 to 0.52-0.53 of its raw floor. Only these: an insert,
an update by primary key and a lookup by a unique key have one best plan whatever their
parameters, which a prepared statement's generic plan is; the portal's other queries are not
prepared (the license list's, shared by organizations of 1,000 and 100,000 licenses, took 7
times as long on a generic plan).
DATABASE_PREPARED_STATEMENTS=false turns it off (a pooler that shares server connections
between clients and does not track prepared statements: PgBouncer before 1.21 in transaction
mode). Django's execute wrappers and query log see these statements as any other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Field, Model, QuerySet
from django.db.models.query import get_related_populators  # type: ignore[attr-defined]
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)


def _preparing_cursor_class() -> type[Any] | None:
    try:
        from django.db.backends.postgresql.base import (  # type: ignore[attr-defined]
            ServerBindingCursor,
        )
    except ImportError:  # psycopg 2, or no PostgreSQL driver (the embedded SQLite default)
        return None

    class PreparingCursor(ServerBindingCursor):  # type: ignore[misc,valid-type]
        """Binds its parameters on the server and prepares each statement on its first run on
        the connection (psycopg keeps the prepared ones per connection, by their SQL)."""

        def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
            return super().execute(query, params, **{**options, "prepare": True})

    return PreparingCursor


_PREPARING_CURSOR = _preparing_cursor_class()
_ONLY_WHEN_ASKED = 2**62


def _cursor(db: BaseDatabaseWrapper) -> CursorWrapper:
    """A cursor of `db`: on PostgreSQL one that prepares its statements (see above)."""
    if db.vendor != "postgresql" or _PREPARING_CURSOR is None:
        return db.cursor()
    if not settings.DATABASE_PREPARED_STATEMENTS or db.queries_logged:
        # Logged queries (DEBUG, a test capturing them) show the SQL a cursor last ran, which
        # psycopg does not keep for a prepared statement: those go through the plain cursor.
        return db.cursor()
    db.ensure_connection()
    if db.connection.prepare_threshold is None:
        # Django turns psycopg's preparing off (None), and psycopg then prepares nothing, even
        # when asked. Only when asked, then: no count reaches this (Django's own cursors bind
        # on the client side and never prepare).
        db.connection.prepare_threshold = _ONLY_WHEN_ASKED
    with db.wrap_database_errors:
        raw = _PREPARING_CURSOR(db.connection)
    return db._prepare_cursor(raw)  # type: ignore[attr-defined,no-any-return]


# Per model: its INSERT's head, the fields it writes, the auto primary key RETURNING reads.
_INSERTS: dict[type[Model], tuple[str, list[Field[Any, Any]], Field[Any, Any] | None]] = {}


def _insert_of(model: type[Model]) -> tuple[str, list[Field[Any, Any]], Field[Any, Any] | None]:
    if model not in _INSERTS:
        meta = model._meta
        pk = meta.pk
        auto = pk if pk is not None and getattr(pk, "db_returning", False) else None
        fields = [field for field in meta.concrete_fields if field is not auto]
        quote = connection.ops.quote_name
        head = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        _INSERTS[model] = (head, fields, auto)
    return _INSERTS[model]


def rows_insert(instances: Sequence[Model]) -> None:
    """INSERTs `instances` (of one model) in one statement, as bulk_create would; an auto
    primary key (a serial id) is read back with RETURNING and set on each instance."""
    if not instances:
        return
    model = type(instances[0])
    if connection.vendor != "postgresql":
        # One INSERT as well; SQLite 3.35+ reads an auto primary key back with RETURNING.
        model._default_manager.bulk_create(instances)  # type: ignore[attr-defined]
        return
    head, fields, auto = _insert_of(model)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params: list[Any] = []
    for instance in instances:
        params.extend(
            field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields
        )
    sql = head + "VALUES " + ", ".join([row] * len(instances))
    if auto is not None:
        sql += f" RETURNING {connection.ops.quote_name(auto.column)}"
    with _cursor(connection) as cursor:
        cursor.execute(sql, params)
        returned = cursor.fetchall() if auto is not None else []
    for index, instance in enumerate(instances):
        if auto is not None:
            setattr(instance, auto.attname, returned[index][0])
        instance._state.adding = False
        instance._state.db = connection.alias


def row_update(instance: Model, fields: Sequence[str]) -> None:
    """UPDATEs `fields` of a saved instance from its attributes, as save(update_fields=…)."""
    if connection.vendor != "postgresql":
        instance.save(update_fields=list(fields))
        return
    meta = instance._meta
    quote = connection.ops.quote_name
    chosen: list[Field[Any, Any]] = [meta.get_field(name) for name in fields]  # type: ignore[misc]
    assert meta.pk is not None
    sql = (
        f"UPDATE {quote(meta.db_table)} SET "  # noqa: S608
        + ", ".join(f"{quote(field.column)} = %s" for field in chosen)
        + f" WHERE {quote(meta.pk.column)} = %s"
    )
    params = [
        field.get_db_prep_save(field.pre_save(instance, False), connection) for field in chosen
    ]
    params.append(meta.pk.get_db_prep_value(instance.pk, connection))
    with _cursor(connection) as cursor:
        cursor.execute(sql, params)


class RowQuery(Generic[M]):
    """`build(*params)`'s query on the default database, compiled on its first run in the
    process (per database vendor), then run with each call's parameters: `build` must return
    the same query for any parameters, and its SQL's parameters must be exactly `params`, in
    order (checked when it compiles).

    What it returns is what the QuerySet would: model instances with their select_related
    rows, the fields' converters applied. Not for querysets with annotations, deferred fields
    or prefetches (refused when it compiles).
    """

    def __init__(self, build: Callable[..., QuerySet[M]]) -> None:
        self.build = build
        self._compiled: dict[tuple[str, str], tuple[str, bool, Callable[[list[Any]], list[M]]]] = {}

    def _compile(self, params: tuple[Any, ...]) -> tuple[str, bool, Callable[[list[Any]], list[M]]]:
        queryset = self.build(*params)
        query = queryset.query
        deferred = query.deferred_loading[0]
        if query.annotation_select or deferred or queryset._prefetch_related_lookups:  # type: ignore[attr-defined]
            raise ValueError("RowQuery reads whole rows: no annotations, deferrals or prefetches")
        compiler = query.get_compiler(using=queryset.db)
        sql, compiled = compiler.as_sql()
        if tuple(compiled) != params:
            raise ValueError(f"RowQuery's parameters must be its SQL's: {compiled!r} != {params!r}")
        select, klass_info = compiler.select, compiler.klass_info
        assert klass_info is not None
        model: type[M] = klass_info["model"]
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        names = [column[0].target.attname for column in select[start:end]]
        populators = get_related_populators(klass_info, select, queryset.db)
        converters = compiler.get_converters([column[0] for column in select])
        db = queryset.db

        def instances(rows: list[Any]) -> list[M]:
            if converters:
                rows = list(compiler.apply_converters(rows, converters))
            made = []
            for row in rows:
                instance = model.from_db(db, names, row[start:end])
                for populator in populators:
                    populator.populate(row, instance)
                made.append(instance)
            return made

        return sql, bool(query.select_for_update), instances

    def all(self, *params: Any) -> list[M]:
        key = (connection.alias, connection.vendor)
        if key not in self._compiled:
            self._compiled[key] = self._compile(params)
        sql, locks, instances = self._compiled[key]
        db = connections[key[0]]
        features = db.features
        if (
            locks
            and features.has_select_for_update
            and features.supports_transactions
            and db.get_autocommit()
        ):
            # As the ORM refuses it (a lock outside a transaction is released at once), on
            # every run, not only the one that compiled it; SQLite has no row locks to refuse.
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        with _cursor(db) as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return instances(rows)

    def first(self, *params: Any) -> M | None:
        """The first row's instance, or None (the query orders and limits itself)."""
        found = self.all(*params)
        return found[0] if found else None
