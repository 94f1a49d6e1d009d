from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import render

from portal.http import PortalRequest, organization_required
from portal.policy import Action, allows

from .selectors import notification_for, notification_history, open_notifications


@organization_required(action=Action.OBTAIN_KEYS)
def pending_upgrades(request: PortalRequest) -> HttpResponse:
    """“I don't have a notification ID”: the organization's open notifications and lines."""
    return render(
        request,
        "upgrades/pending.html",
        {
            "notifications": open_notifications(organization=request.organization),
        },
    )


@organization_required(action=Action.OBTAIN_KEYS)
def notification_detail(request: PortalRequest, pk: int) -> HttpResponse:
    notification = notification_for(organization=request.organization, pk=pk)
    if notification is None:
        raise Http404
    lines = notification.lines.select_related("source_license__version__product").order_by(
        "source_license__key"
    )
    return render(
        request,
        "upgrades/notification.html",
        {
            "notification": notification,
            "lines": lines,
            "history": notification_history(
                notification,
                only_by=None if allows(request, Action.VIEW_LICENSES) else request.user,
            ),
        },
    )
