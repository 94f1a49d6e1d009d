"""The load test: people using the portal in a realistic mix (run by `make load`, bench/load.py).

Each simulated person logs in as one of seed_bench's load-test users (load-NNN@bench.example,
one organization each, 150 licenses), from an X-Forwarded-For address of its own (the server
trusts one proxy), and then, with 1-3 s between actions: opens the dashboard, the license list
with filters and searches, license pages, exports the list, completes Get a key with a fresh
serial (every step of the wizard), converts a voucher, upgrades one license of its upgrade
notification, and now and then logs out and in again.

Fresh serials, vouchers and each organization's notification ID come from the JSON file in
BENCH_LOAD_POOLS (bench/load.py writes it from the database before the run). A wizard whose
pool is empty is skipped, not failed.
"""

from __future__ import annotations

import html
import itertools
import json
import os
import random
import re
import sys
from pathlib import Path
from typing import Any

from locust import HttpUser, between, tag, task

sys.path.insert(0, str(Path(__file__).resolve().parent))

from httpkit import form_fields

POOLS: dict[str, Any] = json.loads(Path(os.environ["BENCH_LOAD_POOLS"]).read_text())
SERIALS: list[str] = POOLS["serials"]
VOUCHERS: list[str] = POOLS["vouchers"]
NOTIFICATIONS: dict[str, str] = POOLS["notifications"]
PASSWORD: str = POOLS["password"]
PEOPLE = itertools.count()
LICENSE_LINK = re.compile(r'href="(/licenses/[0-9a-f-]{36}/)"')
BACK = re.compile(r'name="wizard_goto_step" value="([^"]+)"')
REGISTRATION = {
    "company": "Load Test Co",
    "address": "1 Load Street",
    "country": "BR",
    "primary_name": "Primary Person",
    "primary_email": "primary@load.example",
    "primary_phone": "+55 11 5555-0000",
    "technical_name": "Technical Person",
    "technical_email": "tech@load.example",
    "technical_phone": "+55 11 5555-0001",
}
SEARCHES = ["host-0004", "CC-1012", "Austin", "Primary", "tech-1@", "WSG", "14.3"]
FILTERS = ["status=active", "status=revoked", "maintenance=expired", "maintenance=active",
           "sort=-maintenance", "sort=product", "page=2"]  # fmt: skip


REFUSAL = re.compile(r'<div class="alert alert-danger"\s+role="alert">(.*?)</div>', re.S)


class Refused(Exception):
    """The portal refused a step and said why (two simulated people share each account: one may
    upgrade the seats the other was about to): the flow ends there, and the report quotes the
    message, so that a refusal that should not happen is seen."""


class PortalUser(HttpUser):
    wait_time = between(1, 3)

    def on_start(self) -> None:
        number = next(PEOPLE)
        emails = sorted(NOTIFICATIONS)
        self.email = emails[number % len(emails)]
        self.client.headers["X-Forwarded-For"] = f"10.{number // 250 % 250}.{number % 250}.7"
        self.licenses: list[str] = []
        self.login()

    # -- helpers -------------------------------------------------------------------------------

    def submit(
        self, page: Any, containing: str, values: dict[str, str], name: str, expect: str = ""
    ) -> Any:
        """Posts the page's form (its own defaults, then `values`), as a browser would; the
        request fails unless it ends on a URL containing `expect`."""
        try:
            fields = form_fields(page.text, containing=containing)
        except LookupError:
            fields = {}
        fields = {k: v for k, v in fields.items() if k != "wizard_goto_step"}
        fields.update(values)
        with self.client.post(page.url, data=fields, name=name, catch_response=True) as response:
            if response.status_code >= 400:
                response.failure(f"{response.status_code} from {page.url}")
            elif not fields:
                response.failure(f"no form with {containing!r} on {page.url}")
            elif expect and expect not in response.url:
                refusal = REFUSAL.search(response.text)
                if refusal is None:
                    response.failure(f"ended on {response.url}, expected {expect}")
                else:  # a refusal the portal explained: not an error, reported apart
                    response.success()
                    raise Refused(f"{name}: {html.unescape(' '.join(refusal.group(1).split()))}")
        return response

    def wizard(self, path: str, first: str, name: str) -> Any:
        """The wizard at `path` on its first step (the one with a field named like `first`).

        Opening a wizard resumes the instance left unfinished, where it stood: after a flow
        refused midway (the seats another person of the same account upgraded meanwhile), the
        next one opened on the quantity step, and posting the first step's values there had no
        form to take the CSRF token from (3 "403"s at 160 users). As a person would, the
        simulated one goes Back until the first step."""
        page = self.client.get(path, name=f"{name} (form)")
        for _ in range(5):
            back = BACK.search(page.text)
            try:
                form_fields(page.text, containing=first)
                return page
            except LookupError:
                if back is None:
                    return page  # not a wizard page: the next submit says what it was
            fields = form_fields(page.text, containing="current_step")
            page = self.client.post(
                page.url, data={**fields, "wizard_goto_step": back.group(1)}, name=f"{name} (back)"
            )
        return page

    def registration(self, page: Any, prefix: str) -> dict[str, str]:
        fields = form_fields(page.text, containing=f"{prefix}company")
        return {
            f"{prefix}{key}": value
            for key, value in REGISTRATION.items()
            if not fields.get(f"{prefix}{key}")
        }

    def login(self) -> None:
        page = self.client.get("/accounts/login/", name="login (form)")
        values = {"login": self.email, "password": PASSWORD}
        self.submit(page, "password", values, "login (POST)", expect="/dashboard/")

    # -- the mix -------------------------------------------------------------------------------

    @task(10)
    def dashboard(self) -> None:
        self.client.get("/dashboard/", name="dashboard")

    @task(8)
    def license_list(self) -> None:
        response = self.client.get("/licenses/", name="licenses")
        self.licenses = LICENSE_LINK.findall(response.text)[:50] or self.licenses

    @task(4)
    def license_list_filtered(self) -> None:
        self.client.get(f"/licenses/?{random.choice(FILTERS)}", name="licenses (filter)")

    @task(3)
    def license_search(self) -> None:
        self.client.get(f"/licenses/?q={random.choice(SEARCHES)}", name="licenses (search)")

    @task(6)
    def license_page(self) -> None:
        if self.licenses:
            self.client.get(random.choice(self.licenses), name="license page")

    @task(1)
    def export(self) -> None:
        self.client.get("/licenses/export.csv", name="licenses export.csv")

    @task(1)
    def relogin(self) -> None:
        page = self.client.get("/accounts/logout/", name="logout (form)")
        self.submit(page, "csrfmiddlewaretoken", {}, "logout (POST)")
        self.login()

    @task(2)
    @tag("wizard")
    def get_a_key(self) -> None:
        if not SERIALS:
            return
        serial = SERIALS.pop()
        page = self.wizard("/get-a-key/", "serial", "get a key 1")
        page = self.submit(page, "serial", {"serial-serial": serial}, "get a key 2 (serial)")
        values = self.registration(page, "registration-")
        page = self.submit(page, "registration-", values, "get a key 3 (registration)")
        self.submit(page, "current_step", {}, "get a key 4 (confirm)", expect="/result/")

    @task(1)
    @tag("wizard")
    def voucher(self) -> None:
        if not VOUCHERS:
            return
        code = VOUCHERS.pop()
        page = self.client.get("/vouchers/", name="vouchers 1 (form)")
        page = self.submit(page, "codes", {"codes": code}, "vouchers 2 (codes)")
        page = self.submit(page, "token", {}, "vouchers 3 (preview)")
        page = self.submit(page, "company", self.registration(page, ""), "vouchers 4 (contacts)")
        self.submit(page, "token", {}, "vouchers 5 (confirm)", expect="/vouchers/conversions/")

    @task(1)
    @tag("wizard")
    def upgrade(self) -> None:
        code = NOTIFICATIONS[self.email]
        page = self.wizard("/upgrades/", "notification_id", "upgrade 1")
        values = {"notification-notification_id": code}
        page = self.submit(page, "notification_id", values, "upgrade 2 (notification)")
        page = self.submit(page, "line-", {}, "upgrade 3 (line)")
        page = self.submit(page, "quantity-", {"quantity-quantity": "1"}, "upgrade 4 (qty)")
        values = self.registration(page, "registration-")
        page = self.submit(page, "registration-", values, "upgrade 5 (registration)")
        self.submit(page, "current_step", {}, "upgrade 6 (confirm)", expect="/result/")
