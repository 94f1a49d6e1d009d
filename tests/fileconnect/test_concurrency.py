"""Two files added at once to a version that has no release yet end up in one release."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from django.db import connection, connections

from fileconnect.models import Release, ReleaseFile
from tests.conftest import postgres_only
from tests.fileconnect.factories import add_file, version_of
from tests.licensing.factories import ProductFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, postgres_only()]

THREADS = 6


def test_concurrent_uploads_share_one_new_release() -> None:
    assert connection.vendor == "postgresql"
    version = version_of(ProductFactory(), "3.0", date(2025, 1, 1))
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def upload(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            add_file(version, f"file {n}".encode(), platform=f"Platform {n}", name=f"f{n}.bin")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert Release.objects.filter(version=version).count() == 1
    assert ReleaseFile.objects.filter(release__version=version).count() == THREADS
