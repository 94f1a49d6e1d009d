"""The session floor: a page that loads the session and the user and does nothing else.

Benchmarks measure every page beside it under the same server (bench/REPORT.md), so a ratio
says what the page adds to the cost every logged-in request pays anyway. A second floor renders
the portal's layout with nothing in it: what every page pays besides its own content. They are
mounted only when PORTAL_BENCH_FLOOR is set, and never in production mode (portal/settings.py).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path


@login_required
def bench_floor(request: HttpRequest) -> HttpResponse:
    # request.user reads the session row and then the user row, as every portal page does.
    return HttpResponse(str(request.user.pk), content_type="text/plain")


@login_required
def bench_layout_floor(request: HttpRequest) -> HttpResponse:
    # The portal's layout (base.html: navigation, organization switcher, footer) with nothing in
    # it: what every page renders besides its own content.
    return render(request, "base.html")


def urlpatterns() -> list[URLPattern]:
    """The floor's URL when the switch is on; nothing otherwise."""
    if not settings.PORTAL_BENCH_FLOOR:
        return []
    return [
        path("bench-floor/", bench_floor, name="bench-floor"),
        path("bench-floor/layout/", bench_layout_floor, name="bench-floor-layout"),
    ]
