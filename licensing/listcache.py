"""My licenses' page cache: the list's content, rendered once per state of what it shows.

A member who opens My licenses again (after a license's page, a reload, back from the next
page) gets the content rendered the last time, unless anything it shows has changed since. The
key names everything the content depends on:

- what the rows show: for the organization and for the catalog, the last committed transaction
  that changed a row the list reads (ListVersion, counted by PostgreSQL triggers on every table
  the list reads: licensing/migrations/0020_list_version.py; the tests check that the list reads
  no other table). The triggers see every writer (the services, the admin, a bulk update, a
  shell), and a transaction's id is never used again, so no key names two states;
- who looks and how: the organization, the person, their role (the actions offered), the
  language, the time zone and today's date (maintenance badges), the query string whole;
- the code that renders it (a digest of the portal's source, templates, translations, static
  files): a new release does not show the previous one's pages.

Only members without licenses shared with them are served from the cache: a partner's view
depends on its scopes and on what it obtained, and shared licenses on other organizations'
rows; those lists are rendered every time, as is every list on a database other than
PostgreSQL (no triggers). The CSRF token is never cached: the content is stored with a
placeholder that each response replaces with its own token. The flash messages, the navigation
and everything else outside the content are rendered for each request.

Pages are stored in the shared cache (Redis; this process's memory while Redis is down,
portal/cache.py) and the last RECENT_PAGES this process stored or read also in its memory,
which saves a round trip to Redis: neither can be out of date, since a key names one state.

The count is read before the rows, so a page stored under a count shows at least that state:
a transaction that commits between the two reads is in the rows and changes the count, and the
next request misses. The count's row is written at commit (a deferred trigger), after every
other lock the transaction takes.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from functools import cache
from pathlib import Path

from django.conf import settings
from django.core.cache import cache as django_cache
from django.db import connection
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.utils import timezone, translation

from portal.http import PortalRequest
from portal.models import User

from .selectors import active_shares

logger = logging.getLogger(__name__)

# The content of the page between these markers is what is stored (licensing/license_list.html
# writes them only when the page is to be stored); neither reaches a browser.
START = "<!--license-list-content-->"
END = "<!--/license-list-content-->"
# Stands for the CSRF token in a stored page; each response gets its own token.
CSRF_PLACEHOLDER = "license-list-csrf-token-placeholder"

# The key's state: the organization's and the catalog's last change, and whether the person has
# licenses shared with them (licensing.selectors.active_shares, compiled once: state_sql).
_STATE = """
SELECT
    (SELECT xact FROM licensing_listversion WHERE organization_id = %s),
    (SELECT xact FROM licensing_listversion WHERE organization_id = 0),
    EXISTS ({shares})
"""
_PROBE = -271828  # a user id no one has, to find the selector's one parameter


@cache
def state_sql() -> str | None:
    """_STATE with the person's active shares as the selectors define them, compiled once per
    process; None (the cache off) if the selector's query takes any parameter but the person."""
    shares = active_shares(User(pk=_PROBE)).order_by().values("pk")
    sql, params = shares.query.sql_with_params()
    if list(params) != [_PROBE]:
        logger.warning("My licenses' page cache is off: active_shares() takes other parameters")
        return None
    return _STATE.format(shares=sql)


_SOURCES = ("templates", "portal", "licensing", "upgrades", "enterprise_flex", "vouchers",
            "fileconnect", "static")  # fmt: skip
_SUFFIXES = {".py", ".html", ".mo", ".js", ".css", ".json"}


@cache
def code_digest() -> str:
    """A digest of what renders the list: the portal's source, templates, translations and
    static files (their hashed names are in the page), read once per process."""
    digest = hashlib.sha256()
    base = Path(settings.BASE_DIR)
    for top in _SOURCES:
        for path in sorted((base / top).rglob("*")):
            if path.suffix in _SUFFIXES and "__pycache__" not in path.parts and path.is_file():
                digest.update(str(path.relative_to(base)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# The tables whose triggers count the changes (licensing/migrations/0020_list_version.py).
COUNTED_TABLES = frozenset(
    {
        "licensing_license",
        "licensing_serialnumber",
        "licensing_supportregistration",
        "licensing_customfield",
        "licensing_customfieldvalue",
        "licensing_licenseshare",
        "licensing_product",
        "licensing_productversion",
        "portal_organization",
    }
)
_COUNTING = """
SELECT tgrelid::regclass::text FROM pg_trigger
WHERE tgenabled <> 'D' AND (tgname LIKE %s OR tgname LIKE %s)
GROUP BY 1 HAVING count(*) = 2
"""


@cache
def counting() -> bool:
    """Whether both counting triggers of every table (the one that names the organization, the
    one that counts at commit) are in the database and enabled, checked once per process:
    without them (a restore that left them out, a replica that does not fire them) a stored
    page could outlive a change, so nothing is stored or read."""
    with connection.cursor() as cursor:
        cursor.execute(_COUNTING, [r"%\_list\_touched", r"%\_list\_changed"])
        enabled = {table for (table,) in cursor.fetchall()}
    missing = COUNTED_TABLES - enabled
    if missing:
        logger.warning(
            "My licenses' page cache is off: no enabled change-counting trigger on %s "
            "(licensing migration 0020)",
            ", ".join(sorted(missing)),
        )
    return not missing


def key_for(request: PortalRequest) -> str | None:
    """The key the request's list content is stored under, or None when it is not stored.

    One query: the organization's and the catalog's last change, and whether the person has
    licenses shared with them.
    """
    seconds = settings.LICENSE_LIST_CACHE_SECONDS
    access = request.access
    if not seconds or connection.vendor != "postgresql" or not access.is_member:
        return None
    if not counting():
        return None
    sql = state_sql()
    if sql is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(sql, [request.organization.pk, request.user.pk])
        changed, catalog_changed, shared = cursor.fetchone()
    if shared:
        return None
    parts = [
        code_digest(),
        request.organization.pk,
        changed,
        catalog_changed,
        request.user.pk,
        access.role,
        translation.get_language(),
        timezone.get_current_timezone_name(),
        timezone.localdate().isoformat(),
        sorted(request.GET.lists()),
    ]
    return "license-list:" + hashlib.sha256(repr(parts).encode()).hexdigest()


# The pages this process stored or read last, in front of the shared cache: a key names one
# state, so a page kept here is never out of date; only the number kept is bounded.
_RECENT: OrderedDict[str, str] = OrderedDict()
RECENT_PAGES = 64
_recent_lock = threading.Lock()


def _remember(key: str, content: str) -> None:
    with _recent_lock:
        _RECENT[key] = content
        _RECENT.move_to_end(key)
        while len(_RECENT) > RECENT_PAGES:
            _RECENT.popitem(last=False)


def forget() -> None:
    """Empties this process's recent pages (the tests' cache.clear() empties the shared ones)
    and forgets whether the triggers were found."""
    with _recent_lock:
        _RECENT.clear()
    counting.cache_clear()
    state_sql.cache_clear()


def cached(key: str | None) -> str | None:
    """The stored content for `key`, if any: from this process's recent pages, else from the
    shared cache."""
    if key is None:
        return None
    with _recent_lock:
        content = _RECENT.get(key)
        if content is not None:
            _RECENT.move_to_end(key)
            return content
    content = django_cache.get(key)
    if not isinstance(content, str):
        return None
    _remember(key, content)
    return content


def store(key: str, response: HttpResponse) -> None:
    """Keeps the content of `response` (rendered with the markers and the placeholder) under
    `key`, and takes the markers out of the response."""
    page = response.content.decode()
    start, end = page.find(START), page.find(END)
    if response.status_code == 200 and 0 <= start < end:
        content = page[start + len(START) : end]
        django_cache.set(key, content, settings.LICENSE_LIST_CACHE_SECONDS)
        _remember(key, content)
    response.content = page.replace(START, "").replace(END, "").encode()


def with_token(request: PortalRequest, response: HttpResponse) -> HttpResponse:
    """`response` with this request's CSRF token in place of the placeholder."""
    response.content = response.content.replace(
        CSRF_PLACEHOLDER.encode(), get_token(request).encode()
    )
    return response
