"""Request context (ID and client address), the request's user with its memberships, the
cleaning of submitted text (NUL in the query, directional controls in forms), and the page for a
dependency that is down."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.utils.crypto import constant_time_compare
from django.utils.functional import SimpleLazyObject
from kombu.exceptions import OperationalError as BrokerUnavailable
from redis.exceptions import RedisError

from .models import Membership, User
from .policy import MEMBERSHIPS_ATTR
from .requestcontext import client_ip, get_client_ip, new_request_id, request_id
from .selectors import MEMBERSHIP_ORDER

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
UNAVAILABLE = (RedisError, BrokerUnavailable)


class RequestContextMiddleware:
    """Gives each request an ID (log lines, error page, response header) and its client IP."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rid = new_request_id()
        ip = get_client_ip(request)
        request.request_id = rid  # type: ignore[attr-defined]
        request.client_ip = ip  # type: ignore[attr-defined]
        rid_token, ip_token = request_id.set(rid), client_ip.set(ip)
        try:
            response = self.get_response(request)
        finally:
            request_id.reset(rid_token)
            client_ip.reset(ip_token)
        response[REQUEST_ID_HEADER] = rid
        return response


def _user_with_memberships(user_id: int) -> User | None:
    """The user and its memberships (with their organizations) in one query; a second one only
    for a user who belongs to no organization yet."""
    memberships = list(
        Membership.objects.filter(user_id=user_id)
        .select_related("user", "organization")
        .order_by(*MEMBERSHIP_ORDER)
    )
    user: User | None
    if memberships:
        user = memberships[0].user
        for membership in memberships:
            membership.user = user
    else:
        user = User.objects.filter(pk=user_id).first()
    if user is not None:
        setattr(user, MEMBERSHIPS_ATTR, memberships)
    return user


def get_user(request: HttpRequest) -> User | AnonymousUser:
    """django.contrib.auth.get_user, loading the user with its memberships.

    The same checks: the backend that logged the session in must still be configured and allow
    the user (is_active), and the session's auth hash must match the user's password hash (a
    password change logs the user's other sessions out), or a fallback secret's, which rotates it.
    """
    try:
        # Stored as a string, as Django's auth._get_user_session_key reads it.
        user_id = User._meta.pk.to_python(request.session[auth.SESSION_KEY])  # type: ignore[union-attr]
        backend_path = request.session[auth.BACKEND_SESSION_KEY]
    except KeyError:
        return AnonymousUser()
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return AnonymousUser()
    backend = auth.load_backend(backend_path)
    user = _user_with_memberships(user_id)
    can_authenticate = getattr(backend, "user_can_authenticate", None)
    if user is None or (can_authenticate is not None and not can_authenticate(user)):
        return AnonymousUser()
    session_hash = request.session.get(auth.HASH_SESSION_KEY)
    user_hash = user.get_session_auth_hash()
    if session_hash and constant_time_compare(session_hash, user_hash):
        return user
    if session_hash and any(
        constant_time_compare(session_hash, fallback)
        for fallback in user.get_session_auth_fallback_hash()
    ):
        request.session.cycle_key()
        request.session[auth.HASH_SESSION_KEY] = user_hash
        return user
    request.session.flush()
    return AnonymousUser()


class PortalAuthenticationMiddleware(AuthenticationMiddleware):
    """django.contrib.auth's AuthenticationMiddleware, but the user comes with its memberships.

    Nearly every page asks which organizations the user belongs to (the acting organization,
    the switcher, the access checks): loaded with the user, that costs no query of its own.
    Lazy like Django's: a request that never looks at request.user reads nothing. A subclass,
    so that whatever checks for Django's (the admin's system check) finds it.
    """

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _cached_user(request))  # type: ignore[assignment]


def _cached_user(request: HttpRequest) -> User | AnonymousUser:
    # The attribute Django's middleware caches the user under.
    if not hasattr(request, "_cached_user"):
        request._cached_user = get_user(request)  # type: ignore[attr-defined]
    return request._cached_user  # type: ignore[attr-defined]


class PrivateNoStoreMiddleware:
    """Pages and files for a logged-in user show license keys, codes and customer data: no
    browser or proxy cache may keep them (a shared computer's back button, a proxy's disk).

    A view that sets Cache-Control itself keeps its own (the public signing key is public).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not response.has_header("Cache-Control"):
            patch_cache_control(response, no_store=True, private=True)
        return response


class NulQueryMiddleware:
    """Drops NUL from the names and values of the query string before any view reads it.

    Nobody types a NUL; an edited link does (?status__exact=%00). PostgreSQL's text refuses it
    and psycopg raises before the query is sent, so every admin list filter was a 500. The
    license list already read "?q=ab%00c" as "abc" (licensing.filters._readable); now every
    page does, and none has to remember to.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # QUERY_STRING is the raw query: a NUL in it is percent-encoded (or, from a lax
        # server, the byte itself). Checking it leaves request.GET unparsed for every other URL.
        raw = request.META.get("QUERY_STRING", "")
        if "%00" in raw or "\x00" in raw:
            cleaned = QueryDict(mutable=True)
            for name, values in request.GET.lists():
                for value in values:
                    cleaned.appendlist(name.replace("\x00", ""), value.replace("\x00", ""))
            cleaned._mutable = False
            request.GET = cleaned  # type: ignore[misc,assignment]
        return self.get_response(request)


# Unicode's explicit directional embeddings, overrides and isolates (LRE RLE PDF LRO RLO, LRI RLI
# FSI PDI). Nobody types them into a company name or a host ID, but one pasted there reordered
# the rest of the line wherever the value was shown: a company "\u202e..." displayed the account
# number after it reversed. Arabic and Hebrew need none of them (the marks LRM and RLM stay).
BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
_BIDI_RE = re.compile("[\u202a-\u202e\u2066-\u2069]")


class BidiControlsMiddleware:
    """Drops the directional controls from every submitted text value before the view reads it,
    so that no form, wizard or admin page stores one. Passwords are left as typed."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> None:
        if request.method != "POST" or not request.POST:
            return None
        data = request.POST
        if not any(
            _BIDI_RE.search(value)
            for name, values in data.lists()
            if "password" not in name
            for value in values
        ):
            return None
        cleaned = data.copy()
        for name, values in data.lists():
            if "password" not in name:
                cleaned.setlist(name, [value.translate(BIDI_CONTROLS) for value in values])
        cleaned._mutable = False
        request.POST = cleaned  # type: ignore[misc,assignment]
        return None


class ServiceUnavailableMiddleware:
    """Redis or the broker down where nothing degrades: a translated 503, never a 500.

    The paths that use them degrade on their own (portal.cache, the outbox hand-off); this is
    the net under anything that does not, so the user reads "try again in a few minutes".
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, UNAVAILABLE):
            return None
        logger.warning("Service unavailable for %s: %r", request.path, exception)
        response = render(request, "503.html", status=503)
        response["Retry-After"] = "60"
        response["Cache-Control"] = "no-store"
        return response


class MethodNotAllowedPageMiddleware:
    """A GET of an address that only takes a submitted form (a bookmarked or reloaded action,
    a link pasted from the address bar) is the portal's translated page with a way back, not
    Django's empty 405. The status and its Allow header stay."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code != 405
            or request.method not in ("GET", "HEAD")
            or getattr(response, "streaming", False)
            or response.content
        ):
            return response
        from .http import back_url

        page = render(request, "405.html", {"back": back_url(request)}, status=405)
        if response.has_header("Allow"):
            page["Allow"] = response["Allow"]
        return page
