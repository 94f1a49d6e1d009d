from __future__ import annotations

from typing import Any

from allauth.account.forms import SignupForm
from allauth.core import context as allauth_context
from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Membership, Organization
from .policy import SCOPE_LABELS, Scope


class OrganizationForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ["name", "address", "country"]
        labels = {"name": _("Organization name")}
        widgets = {"address": forms.Textarea(attrs={"rows": 3})}


class PortalSignupForm(SignupForm):
    """allauth's sign-up plus the user's name and, unless they were invited, their organization."""

    full_name = forms.CharField(label=_("Your name"), max_length=200)
    organization_name = forms.CharField(
        label=_("Organization name"),
        max_length=200,
        required=False,
        help_text=_("The company the licenses belong to. Leave empty if you were invited."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = allauth_context.request
        self.invited = bool(request is not None and request.session.get("portal:invitation"))
        if self.invited:
            del self.fields["organization_name"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not self.invited and not (cleaned.get("organization_name") or "").strip():
            self.add_error(
                "organization_name",
                _(
                    "Enter your organization's name, or use the invitation "
                    "link your administrator sent you."
                ),
            )
        return cleaned

    def save(self, request: Any) -> Any:
        from .services import organization_create

        user = super().save(request)
        user.full_name = self.cleaned_data["full_name"]
        user.save(update_fields=["full_name"])
        if not self.invited:
            organization_create(name=self.cleaned_data["organization_name"].strip(), admin=user)
        return user


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("Email address"))
    role = forms.ChoiceField(
        label=_("Role"), choices=Membership.Role.choices, initial=Membership.Role.MEMBER
    )


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices)


def _scope_field() -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label=_("The partner may"),
        choices=[(scope.value, SCOPE_LABELS[scope]) for scope in Scope],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one thing the partner may do for you.")},
    )


def _ends_on_field() -> forms.DateField:
    return forms.DateField(
        label=_("Ends on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_(
            "Optional: the partner's access ends after this day. Empty: until you revoke it."
        ),
    )


class DelegationGrantForm(forms.Form):
    partner_account_number = forms.CharField(
        label=_("Partner account number"),
        max_length=12,
        help_text=_("Your channel partner's account number in this portal; ask your partner."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
        error_messages={"required": _("Enter your channel partner's account number.")},
    )
    scopes = _scope_field()
    starts_on = forms.DateField(
        label=_("Starts on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Optional: empty means today."),
    )
    ends_on = _ends_on_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["scopes"].initial = [Scope.VIEW_LICENSES.value, Scope.OBTAIN_KEYS.value]

    def clean_partner_account_number(self) -> str:
        return "".join(self.cleaned_data["partner_account_number"].split())


class DelegationUpdateForm(forms.Form):
    scopes = _scope_field()
    ends_on = _ends_on_field()


class CustomerAccountForm(forms.Form):
    name = forms.CharField(label=_("Customer organization name"), max_length=200)
    address = forms.CharField(
        label=_("Address"), max_length=500, widget=forms.Textarea(attrs={"rows": 3})
    )
    country = forms.CharField(label=_("Country"), max_length=100)
    contact_name = forms.CharField(label=_("Administrator's name"), max_length=200)
    contact_email = forms.EmailField(
        label=_("Administrator's email address"),
        help_text=_(
            "This person gets an invitation to claim the account as its administrator, and can "
            "then change or revoke your access."
        ),
    )


class CustomerSearchForm(forms.Form):
    q = forms.CharField(label=_("Search customers"), max_length=100, required=False)
