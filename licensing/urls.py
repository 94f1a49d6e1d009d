from __future__ import annotations

from django.urls import path

from . import views
from .wizard import GetAKeyWizard

urlpatterns = [
    path("get-a-key/", GetAKeyWizard.as_view(), name="get-a-key"),
    path("get-a-key/result/<uuid:pk>/", views.get_a_key_result, name="get-a-key-result"),
    path("licenses/<uuid:pk>/license-file/", views.license_file_download, name="license-file"),
    path("signing-key/", views.signing_key_page, name="signing-key"),
    path(
        ".well-known/license-signing-key",
        views.signing_key_well_known,
        name="signing-key-well-known",
    ),
]
