from __future__ import annotations

from typing import Any

from allauth.account.forms import SignupForm
from allauth.core import context as allauth_context
from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Membership, Organization


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
