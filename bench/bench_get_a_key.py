"""Figures for the mint and the Get-a-key wizard.

- Mint rate: serials redeemed through `serial_redeem` (the one mint, one transaction each),
  per second, beside its floor: the very rows one of those mints wrote (captured from it with an
  execute wrapper: registration, license, audit events, outbox email, redemption, serial
  update), replayed with raw psycopg in one transaction per mint, with fresh ids and keys.
  For the record, the same rows written through Django's ORM alone (model saves and one
  bulk_create, no domain logic, no email rendering, no broker): what the ORM costs by itself.
- Statements per mint and how often the serial is read, counted without a cap.
- The wizard over HTTP (Django's test client through the whole middleware stack): queries per
  license for the whole wizard (every GET and POST until the result page) and for the confirm
  POST alone.
- License files signed and verified per second.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench \\
        .venv/bin/python bench/bench_get_a_key.py
"""

from __future__ import annotations

import copy
import json
import os
import signal
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from common import QUICK, Target, count_queries, emit
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from httpkit import form_fields
from psycopg.types.json import Json, Jsonb

from licensing.codes import generate_license_key
from licensing.licensefile import build_license_file, verify_license_file
from licensing.models import (
    License,
    Product,
    ProductVersion,
    SerialNumber,
    SerialRedemption,
    SupportRegistration,
)
from licensing.services import serial_redeem, serials_create
from licensing.signing import get_public_key, get_signing_key
from portal.models import AuditEvent, Membership, Organization, OutboundEmail, User

MINTS = 100 if QUICK else 300
ROUNDS = 3
WIZARDS = 5 if QUICK else 20
REGISTRATION = {
    "company": "Bench Co",
    "address": "1 Bench Street",
    "country": "BR",
    "primary_name": "P",
    "primary_email": "p@bench.example",
    "primary_phone": "1",
    "technical_name": "T",
    "technical_email": "t@bench.example",
    "technical_phone": "2",
}


class Recorder:
    """Counts every statement; keeps the writes (SQL and parameters) and the serial reads."""

    def __init__(self) -> None:
        self.count = 0
        self.serial_reads = 0
        self.writes: list[tuple[str, Any]] = []

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        self.count += 1
        head = sql.lstrip()[:6].upper()
        if head == "SELECT" and 'FROM "licensing_serialnumber"' in sql:
            self.serial_reads += 1
        if head in ("INSERT", "UPDATE", "DELETE"):
            self.writes.append((sql, params))
        return execute(sql, params, many, context)


def _swap(value: Any, mapping: dict[Any, Any], fresh: dict[Any, Any]) -> Any:
    if isinstance(value, uuid.UUID):
        return mapping.get(value) or fresh.setdefault(value, uuid.uuid4())
    if isinstance(value, list | tuple):  # a bulk INSERT's columns (UNNEST of arrays)
        return type(value)(_swap(item, mapping, fresh) for item in value)
    if isinstance(value, Jsonb | Json):
        text = _swap(json.dumps(value.obj), mapping, fresh)
        return type(value)(json.loads(text))
    if isinstance(value, str):
        for old, new in mapping.items():
            if isinstance(old, str) and old in value:
                value = value.replace(old, new)
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value in mapping:
        return mapping[value]
    return value


def raw_floor(writes: list[tuple[str, Any]], old: dict[str, Any], serials: list[Any]) -> float:
    """Mints per second replaying `writes` with psycopg, one transaction per mint."""
    db = connection.settings_dict
    conninfo = psycopg.conninfo.make_conninfo(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
        password=db.get("PASSWORD") or None, dbname=db["NAME"],
    )  # fmt: skip
    with psycopg.connect(conninfo) as raw:
        started = time.perf_counter()
        for serial in serials:
            new_license = uuid.uuid4()
            mapping: dict[Any, Any] = {
                old["license"]: new_license,
                str(old["license"]): str(new_license),
                old["key"]: generate_license_key(),
                old["code"]: serial.code,
                old["serial"]: serial.pk,
                str(old["serial"]): str(serial.pk),
            }
            fresh: dict[Any, Any] = {}
            with raw.transaction(), raw.cursor() as cursor:
                for sql, params in writes:
                    args = [_swap(p, mapping, fresh) for p in params or ()]
                    cursor.execute(sql, args)
                    if "RETURNING" in sql and 'INSERT INTO "licensing_supportregistration"' in sql:
                        mapping[old["registration"]] = cursor.fetchone()[0]  # type: ignore[index]
        return len(serials) / (time.perf_counter() - started)


def _fresh(instance: Any, **changes: Any) -> Any:
    """A copy of a saved model instance, not yet saved, with `changes` applied."""
    fresh = copy.copy(instance)  # Model.__getstate__ copies its _state and relation cache
    fresh._state.adding = True
    for name, value in changes.items():
        setattr(fresh, name, value)
    return fresh


def _written_later(writes: list[tuple[str, Any]]) -> dict[str, Any] | None:
    """The spec of the outbox row the mint wrote for its worker to write the email from
    (portal.emails.queue_email_later), or None when the mint wrote the email itself."""
    for sql, params in writes:
        if 'INSERT INTO "portal_outboundemail"' in sql:
            for param in params or ():
                if isinstance(param, Jsonb | Json) and "composer" in (param.obj or {}):
                    return dict(param.obj)
    return None


@dataclass(frozen=True)
class Written:
    """The rows one mint wrote, read back: what the ORM floor copies."""

    license: License
    serial: SerialNumber
    registration: SupportRegistration
    email: OutboundEmail
    redemption: SerialRedemption
    events: list[AuditEvent]


def written_by(license: License, serial: SerialNumber, later: dict[str, Any] | None) -> Written:
    """The rows the mint of `license` from `serial` wrote (read before any floor copies them)."""
    email = OutboundEmail.objects.latest("created_at")  # the last mint's: the same email
    if later is not None:  # as the mint wrote it, not as its worker wrote the email into it since
        email = _fresh(email, to=[], subject="", body_text="", body_html="", attachments=[],
                       compose=later)  # fmt: skip
    return Written(
        license=license,
        serial=serial,
        registration=SupportRegistration.objects.get(pk=license.registration_id),
        email=email,
        redemption=SerialRedemption.objects.get(serial=serial),
        events=list(AuditEvent.objects.filter(object_id__in=[str(license.pk), str(serial.pk)])),
    )


def orm_floor(written: Written, serials: list[SerialNumber]) -> float:
    """Mints per second writing the rows `license`'s mint wrote through the ORM alone: one
    transaction per mint, a save per row and one bulk_create for the audit events, as the mint
    writes them; no lookups, checks, email rendering or broker hand-off."""
    license, serial, registration = written.license, written.serial, written.registration
    email, redemption, events = written.email, written.redemption, written.events
    started = time.perf_counter()
    for each in serials:
        with transaction.atomic():
            copied = _fresh(registration, pk=None)
            copied.save(force_insert=True)
            minted = _fresh(license, pk=uuid.uuid4(), key=generate_license_key(),
                            registration=copied)  # fmt: skip
            minted.save(force_insert=True)
            _fresh(email, pk=uuid.uuid4()).save(force_insert=True)
            _fresh(redemption, pk=None, serial=each, code=each.code, license=minted).save(
                force_insert=True
            )
            each.status = SerialNumber.Status.REDEEMED
            each.license = minted
            each.redeemed_by_id = serial.redeemed_by_id
            each.redeemed_at = serial.redeemed_at
            each.save(update_fields=["status", "redeemed_by", "redeemed_at", "license"])
            AuditEvent.objects.bulk_create([_fresh(event, pk=uuid.uuid4()) for event in events])
    return len(serials) / (time.perf_counter() - started)


@contextmanager
def _worker_paused() -> Iterator[int]:
    """The bench's Celery worker (bench/run.py names its main process) and its pool processes,
    stopped (SIGSTOP), then continued: the mints run as the floors do, on an otherwise idle
    machine, and the emails they hand over wait in Redis. Yields how many processes stopped."""
    main = int(os.environ.get("BENCH_WORKER_PID") or 0)
    children = subprocess.run(  # noqa: S603
        ["/usr/bin/pgrep", "-P", str(main)], capture_output=True, text=True, check=False
    ).stdout.split()
    pids = [main, *map(int, children)] if main else []
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield len(pids)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def _outbox_drained(since: datetime, limit: float = 180.0) -> tuple[int, float]:
    """Waits until the worker has written and sent every email queued since `since` (not those
    other benches left backing off); returns how many were waiting and the seconds it took (or
    the limit, if some were still waiting)."""
    waiting = OutboundEmail.objects.filter(created_at__gte=since).exclude(
        status__in=[OutboundEmail.Status.SENT, OutboundEmail.Status.FAILED]
    )
    count = waiting.count()
    started = time.perf_counter()
    while waiting.exists() and time.perf_counter() - started < limit:
        time.sleep(0.05)
    return count, time.perf_counter() - started


def mint_figures(organization: Organization, user: User, serials: list[SerialNumber]) -> None:
    first, rest = serials[0], serials[1 : MINTS + 1]
    since = timezone.now()
    recorder = Recorder()
    with connection.execute_wrapper(recorder):
        result = serial_redeem(
            code=first.code, organization=organization, registration=REGISTRATION, acting_user=user
        )
    license = result.license
    writes = recorder.writes
    old = {
        "license": license.pk,
        "key": license.key,
        "code": first.code,
        "serial": first.pk,
        "registration": license.registration_id,
    }
    _outbox_drained(since)  # the first mint's email: not in anyone's figure
    first.refresh_from_db()
    written = written_by(license, first, _written_later(writes))
    floor_serials, orm_serials = serials[MINTS + 1 : 2 * MINTS + 1], serials[2 * MINTS + 1 :]
    # In rounds, each kind in turn, so that what the machine does meanwhile (autovacuum after
    # the benches before, the load of other processes) weighs on the mints and the floors alike.
    size = MINTS // ROUNDS
    rates: list[float] = []
    floors: list[float] = []
    orms: list[float] = []
    emails, seconds = 0, 0.0
    still = 0
    counter = Recorder()
    for round_ in range(ROUNDS):
        part = slice(round_ * size, (round_ + 1) * size)
        since = timezone.now()
        with _worker_paused() as workers, connection.execute_wrapper(counter):
            started = time.perf_counter()
            for serial in rest[part]:
                serial_redeem(
                    code=serial.code,
                    organization=organization,
                    registration=REGISTRATION,
                    acting_user=user,
                )
            rates.append(size / (time.perf_counter() - started))
        waited, took = _outbox_drained(since)  # the worker takes them again: written and sent
        emails, seconds = emails + waited, seconds + took
        still += (
            OutboundEmail.objects.filter(created_at__gte=since)
            .exclude(status=OutboundEmail.Status.SENT)
            .count()
        )
        floors.append(raw_floor(writes, old, floor_serials[part]))
        orms.append(orm_floor(written, orm_serials[part]))
    rate, floor, orm = (statistics.median(values) for values in (rates, floors, orms))
    pairs = ", ".join(f"{mint / raw:.2f}" for mint, raw in zip(rates, floors, strict=True))
    tables = ", ".join(sql.split('"')[1] for sql, _params in writes)
    emit("Mint: serials redeemed through the service, one transaction each", rate, "/s",
         floor_name="the same rows with raw psycopg", floor_value=floor, target=Target(">=", 0.5),
         note=f"{size * ROUNDS} mints each way, in {ROUNDS} rounds of the three (medians; the "
         f"rounds' ratios {pairs}); rows written per mint: {tables}; the Celery worker stopped "
         f"during the mints ({workers} processes): their emails waited in Redis")  # fmt: skip
    outcome = f"{still} not sent after" if still else "none left after"
    emit("Mint: their emails written and sent by the Celery worker afterwards",
         emails / seconds, "/s",
         note=f"{emails} outbox rows waiting when the worker took tasks again, {outcome} "
         f"{seconds:.2f} s (to locmem); before the floors ran: it shares the machine with "
         "neither the mints nor the floors")  # fmt: skip
    emit("Mint: the same rows through Django's ORM alone", orm, "/s",
         floor_name="the same rows with raw psycopg", floor_value=floor,
         note="a save per row and one bulk_create, one transaction per mint; no domain logic, "
         "email rendering or broker hand-off: what the ORM costs by itself")  # fmt: skip
    emit("Mint: statements per mint", counter.count / (size * ROUNDS), "statements",
         note=f"the serial read {counter.serial_reads / (size * ROUNDS):.1f} times per mint; "
         f"the floor sends {len(writes)} statements")  # fmt: skip


def wizard_figures(organization: Organization, user: User, serials: list[SerialNumber]) -> None:
    client = Client()
    client.force_login(user)
    whole, confirm = [], []
    for serial in serials[:WIZARDS]:
        with count_queries() as all_queries:
            page = client.get("/get-a-key/")
            fields = form_fields(page.content.decode(), containing="serial")
            fields = {k: v for k, v in fields.items() if not k.startswith("wizard_goto")}
            serial_field = next(k for k in fields if k.endswith("-serial"))
            page = client.post("/get-a-key/", {**fields, serial_field: serial.code})
            fields = form_fields(page.content.decode(), containing="registration-")
            for name, value in REGISTRATION.items():
                if not fields.get(f"registration-{name}"):
                    fields[f"registration-{name}"] = value
            page = client.post("/get-a-key/", fields)
            fields = form_fields(page.content.decode(), containing="current_step")
            fields = {k: v for k, v in fields.items() if not k.startswith("wizard_goto")}
            with count_queries() as confirm_queries:
                response = client.post("/get-a-key/", fields)
            assert response.status_code == 302, response.status_code
            result = client.get(response["Location"])
            assert result.status_code == 200
        whole.append(all_queries.count)
        confirm.append(confirm_queries.count)
    serial = SerialNumber.objects.get(pk=serials[WIZARDS - 1].pk)
    assert serial.status == SerialNumber.Status.REDEEMED, serial.status
    emit("Get a key over HTTP: queries for the whole wizard, per license",
         sum(whole) / len(whole), "queries", target=Target("<=", 20, on="value"),
         note=f"{len(whole)} wizards: GET, serial, registration, confirm, result page "
         f"(min {min(whole)}, max {max(whole)})")  # fmt: skip
    emit("Get a key over HTTP: queries of the confirm POST", sum(confirm) / len(confirm),
         "queries", note=f"min {min(confirm)}, max {max(confirm)}")  # fmt: skip


def signing_figures() -> None:
    key, payload = "ABCDE-FGHJK-MNPQR-STVWX-YZ012", {"data": {"id": "x", "attributes": {}}}
    signing_key, public_key = get_signing_key(), get_public_key()
    started = time.perf_counter()
    files = [
        build_license_file(payload=payload, license_key=key, signing_key=signing_key)
        for _ in range(1000)
    ]
    emit("License files signed", 1000 / (time.perf_counter() - started), "/s")
    started = time.perf_counter()
    for text in files:
        verify_license_file(text, license_key=key, public_key=public_key)
    emit("License files verified", 1000 / (time.perf_counter() - started), "/s")


def main() -> None:
    settings.ALLOWED_HOSTS = ["*"]
    stamp = str(time.time_ns())
    product = Product.objects.create(sku=f"BENCH-M-{stamp}"[:40], name="Bench Mint Product")
    version = ProductVersion.objects.create(product=product, version="1.0")
    user = User.objects.create_user(email=f"bench-mint-{stamp}@bench.example", password=None)
    organization = Organization.objects.create(name=f"Bench Mint {stamp}")
    Membership.objects.create(user=user, organization=organization, role="admin")
    serials = serials_create(version=version, count=3 * MINTS + 2 + WIZARDS)
    mint_figures(organization, user, serials[: 3 * MINTS + 1])
    wizard_figures(organization, user, serials[3 * MINTS + 1 :])
    signing_figures()


if __name__ == "__main__":
    main()
