"""The WSGI entry point gunicorn loads in each worker."""

from __future__ import annotations

import subprocess
import sys


def test_the_loaded_application_is_frozen_out_of_the_collector() -> None:
    # In a fresh interpreter: importing portal.wsgi here would freeze the test process.
    code = (
        "import gc; import portal.wsgi; "
        "assert callable(portal.wsgi.application); print(gc.get_freeze_count())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert int(result.stdout.strip().splitlines()[-1]) > 10_000


def test_celery_worker_processes_freeze_what_they_loaded() -> None:
    import gc

    from celery.signals import worker_process_init

    import portal.celery  # noqa: F401 - connects the receiver

    gc.unfreeze()  # an earlier test may have loaded portal.wsgi in this process
    try:
        worker_process_init.send(sender=None)
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


def test_a_web_worker_loads_the_pdf_and_spreadsheet_libraries_only_when_used() -> None:
    # reportlab (certificate PDF, true-up PDF) and xlsxwriter (license export) are about 10 MB
    # of every worker's resident memory; they load with the first request that needs them.
    code = (
        "import sys; import portal.wsgi; from django.urls import get_resolver; "
        "get_resolver().url_patterns; "
        "print(sorted(m for m in ('reportlab', 'xlsxwriter') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_a_web_worker_gives_back_a_password_checks_memory() -> None:
    # A 19 MiB Argon2id block per check: with glibc's sliding mmap threshold the second check
    # onwards kept it on the heap, and the worker stayed 19 MiB larger after its first login.
    code = (
        "import portal.wsgi\n"
        "from portal.hashers import PortalArgon2PasswordHasher\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS'): return int(line.split()[1])\n"
        "hasher = PortalArgon2PasswordHasher()\n"
        "encoded = hasher.encode('correct horse', hasher.salt())\n"
        "before = rss()\n"
        "for _ in range(4): assert hasher.verify('correct horse', encoded)\n"
        "print(portal.wsgi.large_allocations_returned(), rss() - before)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    fixed, grown_kib = result.stdout.strip().splitlines()[-1].split()
    assert fixed == "True"  # glibc, as on the servers and in CI
    assert int(grown_kib) < 4 * 1024
