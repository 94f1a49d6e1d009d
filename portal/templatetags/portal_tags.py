"""Template helpers of the portal core: audit actions as sentences a person reads."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext_lazy as _

register = template.Library()

# Every audit action the portal writes, as a translated phrase. Apps are named by their action
# strings only, so the core never imports them. An unknown action reads as itself.
AUDIT_ACTIONS = {
    "organization.created": _("Created the organization"),
    "invitation.sent": _("Invited a person to join"),
    "invitation.accepted": _("Accepted an invitation"),
    "invitation.revoked": _("Withdrew an invitation"),
    "membership.removed": _("Removed a member"),
    "membership.role_changed": _("Changed a member's role"),
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
    "license.custom_data_changed": _("Changed custom data"),
    "license.shared": _("Shared a license"),
    "license.share_revoked": _("Stopped sharing a license"),
    "custom_field.created": _("Added a custom field"),
    "custom_field.changed": _("Changed a custom field"),
    "custom_field.deleted": _("Deleted a custom field"),
    "serial.redeemed": _("Redeemed a serial number"),
    "serial.rate_limited": _("Too many unrecognised serial numbers"),
    "upgrade.rate_limited": _("Too many unrecognised notification IDs"),
    "vouchers.rate_limited": _("Too many unrecognised voucher codes"),
    "vouchers.converted": _("Converted vouchers into licenses"),
    "vouchers.conversion_failed": _("A voucher conversion failed"),
    "maintenance.reminders_sent": _("Sent maintenance reminders"),
}


@register.filter
def audit_action(action: str) -> str:
    """The human phrase for an audit action code."""
    return str(AUDIT_ACTIONS.get(action, action))
