from __future__ import annotations

from django.urls import path

from . import views, wizard

urlpatterns = [
    path("", wizard.voucher_center, name="voucher-center"),
    path("preview/", wizard.voucher_center_preview, name="voucher-center-preview"),
    path("registration/", wizard.voucher_center_registration, name="voucher-center-registration"),
    path("confirm/", wizard.voucher_center_confirm, name="voucher-center-confirm"),
    path("conversions/<uuid:pk>/", views.voucher_conversion, name="voucher-conversion"),
    path(
        "conversions/<uuid:pk>/licenses.zip",
        views.voucher_conversion_zip,
        name="voucher-conversion-zip",
    ),
    path("batches/", views.voucher_batches, name="voucher-batches"),
    path("batches/<int:pk>/", views.voucher_batch, name="voucher-batch"),
]
