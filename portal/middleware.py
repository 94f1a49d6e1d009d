"""Request context (ID and client address) and the page for a dependency that is down."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from kombu.exceptions import OperationalError as BrokerUnavailable
from redis.exceptions import RedisError

from .requestcontext import client_ip, get_client_ip, new_request_id, request_id

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
