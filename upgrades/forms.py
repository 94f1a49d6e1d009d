from __future__ import annotations

from typing import Any

from django import forms
from django.urls import reverse
from django.utils import timezone
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from licensing.forms import CODE_INPUT_ATTRS, SupportRegistrationForm
from licensing.templatetags.licensing_tags import mask_key
from portal.formats import short_date
from portal.http import PortalRequest
from portal.models import Organization
from portal.policy import Action, OrganizationAccess, allows
from portal.ratelimit import CodeGuard

from .models import UpgradeLine, UpgradeNotification
from .selectors import notification_history, notification_lookup, open_notification

REFUSED = _(
    "There is no open upgrade notification with this ID for your organization. Check the ID "
    "in the notice email, or use “I don't have a notification ID”."
)
# An ID accepted at step 1 whose notification has nothing open any more at Confirm: it was
# right, so neither REFUSED's "check the ID" nor a failed attempt.
NO_LONGER_AVAILABLE = _(
    "This upgrade is no longer available: the license was upgraded or changed, or the "
    "notification expired, after you entered its ID. See your pending upgrades for what is "
    "still open."
)


def closed_message(*, notification: UpgradeNotification, request: PortalRequest) -> SafeString:
    """Why the organization's own notification can no longer be used (expired, or used up: by
    whom it was used, as far as this person may see), with where to look next. A genuine ID, so
    no "check the ID" and no failed attempt."""
    history = notification_history(
        notification,
        only_by=None if allows(request, Action.VIEW_LICENSES) else request.user,
    )
    last = history.first()
    if notification.is_expired(today=timezone.localdate()):
        why = conditional_escape(
            _("This upgrade notification expired on %(date)s.")
            % {"date": short_date(notification.expires_on)}
        )
    elif last is not None:
        key: SafeString = conditional_escape(mask_key(last.license.key))
        if allows(request, Action.VIEW_LICENSES):
            key = format_html(
                '<a href="{}">{}</a>', reverse("license-detail", args=[last.license.pk]), key
            )
        # The sentence is escaped first, then the link goes in: a translation cannot inject
        # markup (as portal.ratelimit's support_contact).
        why = mark_safe(
            conditional_escape(
                _(
                    "Your organization already used this upgrade notification: version "
                    "%(version)s on %(date)s, new license %(key)s. Nothing is left to upgrade "
                    "with it."
                )
            )
            % {
                "version": conditional_escape(notification.target_version.version),
                "date": conditional_escape(short_date(timezone.localtime(last.created_at))),
                "key": key,
            }
        )
    else:
        why = conditional_escape(
            _(
                "Nothing is left to upgrade with this notification: its licenses were upgraded "
                "or changed since it was sent."
            )
        )
    where = mark_safe(
        conditional_escape(_("See %(history)s, or %(pending)s for what is still open."))
        % {
            "history": format_html(
                '<a href="{}">{}</a>',
                reverse("upgrade-notification", args=[notification.pk]),
                _("this notification's upgrades"),
            ),
            "pending": format_html(
                '<a href="{}">{}</a>', reverse("upgrades-pending"), _("your pending upgrades")
            ),
        }
    )
    return format_html("{} {}", why, where)


def elsewhere_message(*, access: OrganizationAccess, request: PortalRequest) -> str:
    """Where a notification of another organization the user can act for belongs, and how to
    get there from where the request acts."""
    names = {
        "organization": access.organization.name,
        "current": request.organization.name,
        "partner": request.membership.organization.name,
    }
    if access.is_delegated:
        return str(
            _(
                "This upgrade notification is for %(organization)s, not %(current)s. Choose "
                "“Act for this customer” for %(organization)s on your Customers page, then "
                "open the link or enter the ID again."
            )
            % names
        )
    if request.delegation is not None:  # the organization menu shows once back in the partner
        return str(
            _(
                "This upgrade notification is for %(organization)s, not %(current)s. Choose "
                "“Back to %(partner)s” at the top of the page, switch to %(organization)s with "
                "the organization menu if it is another one, then open the link or enter the "
                "ID again."
            )
            % names
        )
    return str(
        _(
            "This upgrade notification is for %(organization)s, not %(current)s. Switch to "
            "%(organization)s with the organization menu at the top of the page, then open the "
            "link or enter the ID again."
        )
        % names
    )


class NotificationIdForm(forms.Form):
    notification_id = forms.CharField(
        label=_("Notification ID"),
        max_length=40,
        help_text=_("From the upgrade notice email, for example 7K3Q-D2XJ-9MNP-4T8R."),
        widget=forms.TextInput(attrs={**CODE_INPUT_ATTRS, "autofocus": True}),
        error_messages={"required": _("Enter the notification ID from the upgrade notice.")},
    )

    def __init__(
        self,
        *args: Any,
        request: PortalRequest,
        organization: Organization,
        typed: bool = True,
        **kwargs: Any,
    ) -> None:
        """`typed=False`: the ID this form accepted at step 1, checked again when the wizard is
        confirmed: no budget is asked or spent, and a notification closed since then (its license
        upgraded or changed, its line used up) says so instead of calling the ID wrong."""
        super().__init__(*args, **kwargs)
        self.request = request
        self.organization = organization
        self.typed = typed
        self.guard = CodeGuard(request, organization=organization, action="upgrade.rate_limited")
        self.notification: UpgradeNotification | None = None

    def clean_notification_id(self) -> str:
        if not self.typed:
            self.notification = open_notification(
                code=self.cleaned_data["notification_id"], organization=self.organization
            )
            if self.notification is None:
                raise forms.ValidationError(NO_LONGER_AVAILABLE, code="closed")
            return self.notification.code
        self.guard.check()
        found = notification_lookup(
            code=self.cleaned_data["notification_id"],
            actor=self.request.user,
            organization=self.organization,
        )
        self.notification = found.notification
        if found.elsewhere is not None:  # a genuine ID, not a guess: no failed attempt
            raise forms.ValidationError(
                elsewhere_message(access=found.elsewhere, request=self.request), code="elsewhere"
            )
        if found.closed is not None:  # genuine too, used up or expired: no failed attempt
            raise forms.ValidationError(
                closed_message(notification=found.closed, request=self.request), code="closed"
            )
        if self.notification is None:
            self.guard.failed()
            raise forms.ValidationError(REFUSED, code="refused")
        return self.notification.code


class LineForm(forms.Form):
    line = forms.ChoiceField(
        label=_("Product to upgrade"),
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Choose the product to upgrade."),
            # Also a line used up since the page was shown (by a colleague, in another tab).
            "invalid_choice": _(
                "Choose one of the products listed: the one you chose has nothing left to "
                "upgrade with this notification."
            ),
        },
    )

    def __init__(self, *args: Any, lines: list[UpgradeLine], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["line"].choices = [  # type: ignore[attr-defined]
            (
                str(line.pk),
                _("%(product)s %(old)s → %(new)s · license …%(key)s · %(count)d to upgrade")
                % {
                    "product": line.source_license.version.product.name,
                    "old": line.source_license.version.version,
                    "new": line.notification.target_version.version,
                    "key": line.source_license.key[-5:],
                    "count": line.upgradable_quantity,
                },
            )
            for line in lines
        ]
        if len(lines) == 1:
            self.fields["line"].initial = str(lines[0].pk)


# The line was used up after it was chosen: by a colleague, or in another tab.
NOTHING_LEFT_ON_LINE = _(
    "Nothing is left to upgrade on this line any more: it has just been used, perhaps by "
    "someone else in your organization. Go back and choose another product, if one is left."
)


class QuantityForm(forms.Form):
    quantity = forms.IntegerField(
        label=_("Quantity"),
        min_value=1,
        error_messages={
            "required": _("Enter how many to upgrade."),
            "invalid": _("Enter a whole number."),
        },
    )

    def __init__(self, *args: Any, remaining: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["quantity"]
        field.validators.append(_MaxValue(remaining))
        if remaining:
            field.help_text = _("From 1 to %(max)d.") % {"max": remaining}
        elif not self.is_bound:  # a submitted form says it as its error, once
            field.help_text = NOTHING_LEFT_ON_LINE
        field.widget.attrs.update({"min": 1, "max": remaining})
        self.initial.setdefault("quantity", remaining)


class _MaxValue:
    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __call__(self, value: int) -> None:
        if not self.limit:  # used up since the line was chosen
            raise forms.ValidationError(NOTHING_LEFT_ON_LINE, code="max_value")
        if value > self.limit:
            raise forms.ValidationError(
                _("Only %(max)d can be upgraded on this line. Enter 1 to %(max)d."),
                params={"max": self.limit},
                code="max_value",
            )


class RegistrationForm(SupportRegistrationForm):
    """The source license's support registration: edits update it, they add no second one."""


class ConfirmForm(forms.Form):
    """Confirmation has no fields: what is confirmed is on the server."""
