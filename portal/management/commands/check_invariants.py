"""`manage.py check_invariants [--outbox-max-age MINUTES]`: exits 1 and lists every violation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.invariants import Options, invariants_check, registered


class Command(BaseCommand):
    help = (
        "Checks what must always hold: nothing spent beyond its limit (serials, vouchers, "
        "upgrade lines), one issue event per license, no stale unsent email. Exits 1 on any "
        "violation, after printing each."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--outbox-max-age",
            type=int,
            default=15,
            metavar="MINUTES",
            help="An email still unsent after this many minutes is a violation (default 15).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["outbox_max_age"] < 0:
            raise CommandError("--outbox-max-age must be 0 or more minutes.")
        run = Options(outbox_max_age=timedelta(minutes=options["outbox_max_age"]))
        count = 0
        for violation in invariants_check(options=run):
            count += 1
            self.stderr.write(str(violation))
        checks = len(registered())
        if count:
            raise CommandError(f"{count} invariant violation(s) in {checks} checks.")
        self.stdout.write(f"{checks} invariant checks: no violations.")
