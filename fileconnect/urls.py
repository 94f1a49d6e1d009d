from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.fileconnect_home, name="fileconnect"),
    path("licenses/<uuid:pk>/", views.license_downloads, name="fileconnect-license"),
    path("serials/<int:pk>/", views.serial_downloads, name="fileconnect-serial"),
    path("files/<int:pk>/download/<str:token>/", views.file_download, name="fileconnect-download"),
    path("files/<int:pk>/link/", views.file_link, name="fileconnect-link"),
    path("log/", views.download_log_view, name="fileconnect-log"),
]
