from __future__ import annotations

from django.urls import path

from . import views
from .wizard import UpgradeWizard

urlpatterns = [
    path("", UpgradeWizard.as_view(), name="upgrade"),
    path("pending/", views.pending_upgrades, name="upgrades-pending"),
    path("notifications/<int:pk>/", views.notification_detail, name="upgrade-notification"),
]
