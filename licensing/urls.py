from __future__ import annotations

from django.urls import path

from .views import certificate, custom_data, keys, licenses, shares
from .wizard import GetAKeyWizard

urlpatterns = [
    path("get-a-key/", GetAKeyWizard.as_view(), name="get-a-key"),
    path("get-a-key/result/<uuid:pk>/", keys.get_a_key_result, name="get-a-key-result"),
    path("licenses/", licenses.license_list, name="license-list"),
    path("licenses/export.<str:fmt>", licenses.license_export, name="license-export"),
    path("licenses/share/", shares.share_create, name="license-share"),
    path("licenses/shares/<int:pk>/revoke/", shares.share_revoke_view, name="share-revoke"),
    # Share tokens are token_urlsafe: anything else is a 404 before any query.
    path("licenses/shared/<slug:token>/", shares.share_landing, name="share-landing"),
    path("licenses/custom-data/", custom_data.custom_values_bulk, name="custom-values-bulk"),
    path("licenses/custom-data/csv/", custom_data.custom_values_csv, name="custom-values-csv"),
    path("licenses/<uuid:pk>/", licenses.license_detail, name="license-detail"),
    path("licenses/<uuid:pk>/license-file/", keys.license_file_download, name="license-file"),
    path("licenses/<uuid:pk>/email/", licenses.license_email_view, name="license-email"),
    path(
        "licenses/<uuid:pk>/registration/", licenses.registration_edit, name="license-registration"
    ),
    path(
        "licenses/<uuid:pk>/custom-data/",
        licenses.license_custom_values,
        name="license-custom-values",
    ),
    path("licenses/<uuid:pk>/renew/", licenses.license_renew_view, name="license-renew"),
    path("licenses/<uuid:pk>/rehost/", licenses.license_rehost_view, name="license-rehost"),
    path(
        "licenses/<uuid:pk>/certificate/",
        certificate.license_certificate,
        name="license-certificate",
    ),
    path(
        "licenses/<uuid:pk>/certificate.pdf",
        certificate.license_certificate_pdf,
        name="license-certificate-pdf",
    ),
    path("organization/custom-fields/", custom_data.custom_fields_settings, name="custom-fields"),
    path(
        "organization/custom-fields/<int:pk>/",
        custom_data.custom_field_edit,
        name="custom-field-edit",
    ),
    path("signing-key/", keys.signing_key_page, name="signing-key"),
    path(
        ".well-known/license-signing-key",
        keys.signing_key_well_known,
        name="signing-key-well-known",
    ),
]
