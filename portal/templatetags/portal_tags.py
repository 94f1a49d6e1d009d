"""Template helpers of the portal core: audit actions as sentences a person reads."""

from __future__ import annotations

from typing import Any

from django import forms, template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from portal.http import ORGANIZATION_FIELD
from portal.ratelimit import support_contact

register = template.Library()

# Every audit action the portal writes, as a translated phrase. Apps are named by their action
# strings only, so the core never imports them. tests/portal/test_audit_sentences.py fails when
# the code base writes an action that has no sentence here.
AUDIT_ACTIONS = {
    "account.login_failed": _("A sign-in attempt failed"),
    "organization.created": _("Created the organization"),
    "organization.changed": _("Changed the organization"),
    "user.changed": _("Changed a user's access"),
    "user.created": _("Added a user"),
    "product.created": _("Added a product"),
    "version.created": _("Added a product version"),
    "registration.created": _("Added a support registration"),
    "user.deactivated": _("Deactivated a user"),
    "user.reactivated": _("Reactivated a user"),
    "invitation.sent": _("Invited a person to join"),
    "invitation.accepted": _("Accepted an invitation"),
    "invitation.revoked": _("Withdrew an invitation"),
    "membership.added": _("Added a member"),
    "membership.removed": _("Removed a member"),
    "membership.role_changed": _("Changed a member's role"),
    "outbox.resent": _("Sent failed emails again"),
    "delegation.granted": _("Delegated to a channel partner"),
    "delegation.changed": _("Changed a partner's access"),
    "delegation.revoked": _("Revoked a partner's access"),
    "delegation.declined": _("Declined to act for the customer"),
    "delegation.expired": _("A partner's access ended"),
    "license.issued": _("Obtained a license key"),
    "license.superseded": _("A license was superseded by an upgrade"),
    "license.upgraded": _("Upgraded a license to a new version"),
    "license.renewed": _("Renewed maintenance"),
    "license.rehosted": _("Moved a license to a new host"),
    "license.emailed": _("Emailed a license key again"),
    "license.registration_changed": _("Changed a support registration"),
    "registration.changed": _("Changed a support registration"),
    "license.custom_data_changed": _("Changed custom data"),
    "license.shared": _("Shared a license"),
    "license.share_revoked": _("Stopped sharing a license"),
    "license.revoked": _("Revoked a license"),
    "license.rehost_granted": _("Allowed a license one more rehost"),
    "custom_field.created": _("Added a custom field"),
    "custom_field.changed": _("Changed a custom field"),
    "custom_field.deleted": _("Deleted a custom field"),
    "serial.redeemed": _("Redeemed a serial number"),
    "serial.rate_limited": _("Too many unrecognised serial numbers"),
    "serials.created": _("Created serial numbers"),
    "serials.imported": _("Imported serial numbers"),
    "serials.voided": _("Voided serial numbers"),
    "serials.exported": _("Exported serial numbers"),
    "serial.changed": _("Changed a serial number"),
    "product.changed": _("Changed a product"),
    "version.changed": _("Changed a product version"),
    "version.published": _("Published a product version"),
    "upgrade.notifications_created": _("Sent upgrade notifications"),
    "upgrade.notification_changed": _("Changed an upgrade notification"),
    "upgrade.rate_limited": _("Too many unrecognised notification IDs"),
    "voucher_batch.created": _("Created a voucher batch"),
    "voucher_batch.changed": _("Changed a voucher batch"),
    "voucher_batch.voided": _("Voided a voucher batch"),
    "vouchers.voided": _("Voided vouchers"),
    "vouchers.exported": _("Exported voucher codes"),
    "vouchers.rate_limited": _("Too many unrecognised voucher codes"),
    "vouchers.converted": _("Converted vouchers into licenses"),
    "vouchers.conversion_failed": _("A voucher conversion failed"),
    "maintenance.reminders_sent": _("Sent maintenance reminders"),
    "ef.contract_created": _("Created an Enterprise Flexible contract"),
    "ef.contract_changed": _("Changed an Enterprise Flexible contract"),
    "ef.line_added": _("Added a product to a contract"),
    "ef.line_changed": _("Changed a contract's product line"),
    "ef.line_removed": _("Removed a product from a contract"),
    "ef.site_added": _("Added a deployment site"),
    "ef.site_changed": _("Changed a deployment site"),
    "ef.user_added": _("Gave a person access to a contract"),
    "ef.user_level_changed": _("Changed a person's contract access level"),
    "ef.user_removed": _("Removed a person from a contract"),
    "ef.invitation_sent": _("Invited a person to a contract"),
    "ef.invitation_accepted": _("Accepted an invitation to a contract"),
    "ef.invitation_revoked": _("Withdrew an invitation to a contract"),
    "ef.drawdown": _("Drew license keys from a contract"),
    "ef.report_saved": _("Saved a deployment report"),
    "ef.report_submitted": _("Submitted a deployment report"),
    "ef.reminder_sent": _("Sent a deployment report reminder"),
    "release.created": _("Published a software release"),
    "release.changed": _("Changed a software release"),
    "release.file_added": _("Added a file to a software release"),
    "release.withdrawn": _("Withdrew a software release"),
    "release.restored": _("Restored a software release"),
    "release.file_resigned": _("Signed a release file again with the current signing key"),
    "release.file_changed": _("Corrected a release file's name, platform or language"),
    "release.file_withdrawn": _("Withdrew a release file"),
    "release.file_restored": _("Restored a release file"),
    "signing_key.rotated": _("Replaced the license signing key"),
}


@register.filter
def audit_action(action: str) -> str:
    """The human phrase for an audit action code; an unknown code reads as a generic sentence."""
    if action in AUDIT_ACTIONS:
        return str(AUDIT_ACTIONS[action])
    return str(_("Recorded an event"))


@register.simple_tag
def support_sentence() -> SafeString:
    """Whom to contact for help, with the configured support links."""
    return support_contact()


@register.inclusion_tag("portal/includes/_form_errors.html")
def form_errors(form: forms.BaseForm) -> dict[str, Any]:
    """The summary above a refused form (crispy's and allauth's forms render it): an alert with
    the errors that belong to no field you can see, and links to the fields in error, whose own
    messages stay beside them. portal.js moves the focus to it or to the first field in error."""
    messages = list(form.non_field_errors())
    fields = []
    for field in form:
        if field.errors and field.is_hidden:
            messages.extend(field.errors)  # a tampered or stale hidden value: nothing to link to
        elif field.errors:
            fields.append(field)
    return {"form_messages": messages, "fields": fields}


@register.simple_tag(takes_context=True)
def organization_field(context: template.Context) -> SafeString:
    """The hidden field naming the organization a form is rendered for, beside its CSRF token:
    posted after the user switched organization in another tab, it is refused (portal.http)."""
    request = context.get("request")
    organization = getattr(request, "organization", None)
    if organization is None:
        return SafeString("")
    return format_html(
        '<input type="hidden" name="{}" value="{}">', ORGANIZATION_FIELD, organization.pk
    )


@register.simple_tag(takes_context=True)
def nav_link(
    context: template.Context, url_name: str, label: str, *, exact: bool = False
) -> SafeString:
    """A top-bar section link, marked as the current page's section (Bootstrap's active look
    and aria-current) when the path is under it: the bar said nowhere where one was."""
    href = reverse(url_name)
    request = context.get("request")
    path = request.path if request is not None else ""
    if path == href or (not exact and path.startswith(href)):
        return format_html(
            '<a class="nav-link active" href="{}" aria-current="page">{}</a>', href, label
        )
    return format_html('<a class="nav-link" href="{}">{}</a>', href, label)
