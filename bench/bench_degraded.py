"""Page latency with Redis down, with only the broker down, and with a Redis that hangs.

Run against PostgreSQL (DATABASE_URL); it starts its own redis-server on a free port:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench \
        .venv/bin/python bench/bench_degraded.py

Each scenario runs in a fresh process whose environment is what production would have
(REDIS_URL, CELERY_BROKER_URL), so the settings' timeouts are the ones measured. The floor is
the same pages with Redis up, measured in the same run. It prints a table and asserts nothing.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

ROUNDS = 5
PAGES = [
    "dashboard (GET)",
    "login",
    "sign-up",
    "password reset",
    "serial entry",
    "get-a-key confirm",
    "email key again",
    "voucher codes",
    "voucher confirm (task)",
]


REGISTRATION = {
    "company": "Bench Co", "address": "1 Bench Street", "country": "BR",
    "primary_name": "P", "primary_email": "p@bench.example", "primary_phone": "1",
    "technical_name": "T", "technical_email": "t@bench.example", "technical_phone": "2",
}  # fmt: skip
PASSWORD = "bench-password-2026"  # noqa: S105 - a bench account's, in a bench database


def _child(rounds: int) -> None:
    """One scenario: the environment is set; time each page `rounds` times."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from licensing.models import Product, ProductVersion
    from portal.models import Organization

    stamp = str(time.time_ns())
    product = Product.objects.create(sku=f"BENCH-D-{stamp}", name="Bench Product")
    version = ProductVersion.objects.create(product=product, version="1.0")
    oem = Organization.objects.create(name=f"Bench OEM {stamp}", kind=Organization.Kind.PARTNER)
    times: dict[str, list[float]] = {page: [] for page in PAGES}
    for n in range(rounds):
        _round(times, f"{stamp}-{n}", version, oem)
    print(json.dumps(times))


def _round(times: dict[str, list[float]], stamp: str, version: Any, oem: Any) -> None:
    from django.test import Client
    from django.urls import reverse

    from licensing.codes import generate_code
    from licensing.services import serials_create
    from portal.models import Membership, Organization, User
    from vouchers.services import voucher_batch_create

    def timed(page: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        response = call(*args, **kwargs)
        times[page].append(time.perf_counter() - started)
        if response.status_code >= 500:
            raise SystemExit(f"{page}: {response.status_code}")
        return response

    email = f"bench-d-{stamp}@bench.example"
    user = User.objects.create_user(email=email, password=PASSWORD)
    organization = Organization.objects.create(name=f"Bench {stamp}")
    Membership.objects.create(user=user, organization=organization, role="admin")
    serial = serials_create(version=version, quantity=1, count=1)[0]
    batch = voucher_batch_create(oem=oem, version=version, count=60)
    codes = "\n".join(batch.vouchers.values_list("code", flat=True))

    client = Client(HTTP_HOST="localhost")
    timed("login", client.post, reverse("account_login"), {"login": email, "password": PASSWORD})
    timed("dashboard (GET)", client.get, reverse("dashboard"))

    from httpkit import form_fields

    def step(page: Any, containing: str, data: dict[str, str], **kwargs: str) -> Any:
        # The wizard's own form (its instance token and step), as a browser would post it.
        fields = form_fields(page.content.decode(), containing=containing)
        fields.pop("wizard_goto_step", None)
        fields.update(data)
        return client.post(kwargs.get("url", reverse("get-a-key")), fields)

    def prefixed(prefix: str, data: dict[str, str]) -> dict[str, str]:
        return {f"{prefix}{key}": value for key, value in data.items()}

    page = client.get(reverse("get-a-key"))
    page = timed("serial entry", step, page, "serial", {"serial-serial": generate_code()})
    page = step(page, "serial", {"serial-serial": serial.code})
    page = step(page, "registration-", prefixed("registration-", REGISTRATION))
    result = timed("get-a-key confirm", step, page, "current_step", {})
    license_id = result["Location"].rstrip("/").split("/")[-1]
    timed("email key again", client.post, reverse("license-email", kwargs={"pk": license_id}))
    timed("voucher codes", client.post, reverse("voucher-center"), {"codes": codes})
    preview = reverse("voucher-center-preview")
    step(client.get(preview), "token", {"combine": "on"}, url=preview)
    registration = reverse("voucher-center-registration")
    step(client.get(registration), "token", REGISTRATION, url=registration)
    confirm = reverse("voucher-center-confirm")
    timed("voucher confirm (task)", step, client.get(confirm), "token", {}, url=confirm)
    client.logout()
    signup = {
        "email": f"new-{stamp}@bench.example",
        "password1": "a-long-enough-password-2026",
        "password2": "a-long-enough-password-2026",
        "full_name": "New",
        "organization_name": "New Co",
    }
    timed("sign-up", Client(HTTP_HOST="localhost").post, reverse("account_signup"), signup)
    reset = reverse("account_reset_password")
    timed("password reset", Client(HTTP_HOST="localhost").post, reset, {"email": email})


class HungRedis:
    """Accepts connections and never answers: a Redis stuck, not refused."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(100)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _address = self.sock.accept()
            except OSError:
                return
            self.held.append(connection)


def _scenario(env: dict[str, str], rounds: int) -> dict[str, list[float]]:
    result = subprocess.run(  # noqa: S603 - this interpreter, this file
        [sys.executable, __file__, "--child", str(rounds)],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    from results import Target, emit

    from tests.processes import RedisServer, closed_port_url

    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "key.pem"
        subprocess.run(  # noqa: S603 - this interpreter, manage.py
            [sys.executable, "manage.py", "signing_key", "create", "--path", str(key)],
            cwd=ROOT, env={**os.environ, "PORTAL_VAR_DIR": tmp}, check=True, capture_output=True,
        )  # fmt: skip
        base = {
            "PORTAL_VAR_DIR": tmp,
            "LICENSE_SIGNING_KEY_FILE": str(key),
            "DJANGO_LOG_LEVEL": "CRITICAL",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            # Every round types one wrong serial from 127.0.0.1: keep the budgets out of the way.
            "PORTAL_CODE_ATTEMPTS_PER_IP": "100000",
            "PORTAL_CODE_ATTEMPTS_GLOBAL": "100000",
        }
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
        server = RedisServer(Path(tmp))
        server.start()
        hung = HungRedis()
        try:
            scenarios = {
                "Redis up (floor)": {"REDIS_URL": server.url(1)},
                "broker down only": {
                    "REDIS_URL": server.url(1),
                    "CELERY_BROKER_URL": closed_port_url(),
                },
            }
            results = {name: _scenario({**base, **env}, ROUNDS) for name, env in scenarios.items()}
            server.stop()  # a real Redis, now stopped: refused
            results["Redis stopped"] = _scenario({**base, "REDIS_URL": server.url(1)}, ROUNDS)
            results["Redis hung (never answers)"] = _scenario(
                {**base, "REDIS_URL": f"redis://127.0.0.1:{hung.port}/0"}, 2
            )
        finally:
            server.stop()
    names = list(results)
    print("Page latency, median / max of the runs, in ms")
    print(f"{'page':26}" + "".join(f"{name[:34]:>36}" for name in names))
    for page in PAGES:
        cells = []
        for name in names:
            values = results[name][page]
            cells.append(f"{statistics.median(values) * 1000:11.0f} / {max(values) * 1000:6.0f}")
        print(f"{page:26}" + "".join(f"{cell:>36}" for cell in cells))
    floor = max(max(values) for values in results[names[0]].values())
    for name in names:
        worst = max(max(values) for values in results[name].values())
        print(f"slowest page, {name}: {worst:.2f} s")
        if name != names[0]:
            emit(f"Slowest page, {name}", worst, "s", floor_name=names[0], floor_value=floor,
                 target=Target("<=", 2, on="value"))  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(int(sys.argv[2]))
    else:
        main()
