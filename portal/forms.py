from __future__ import annotations

from typing import Any

from allauth.account.forms import (
    AddEmailForm,
    ChangePasswordForm,
    LoginForm,
    ResetPasswordForm,
    ResetPasswordKeyForm,
    SignupForm,
)
from allauth.core import context as allauth_context
from django import forms
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

from .models import Membership, Organization
from .policy import SCOPE_LABELS, Scope


class OrganizationForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ["name", "address", "country"]
        labels = {"name": _("Organization name")}
        widgets = {"address": forms.Textarea(attrs={"rows": 3})}


# Set by a landing page reached from an email (an invitation, a share) while logged out: the
# address it was sent to and why, so that sign-up uses that address (what invitation_accept and
# share_accept require) and asks only what that path needs.
SESSION_SIGNUP = "portal:signup"
SIGNUP_VIA_INVITATION = "invitation"
SIGNUP_VIA_SHARE = "share"


def signup_remember(request: HttpRequest, *, email: str, via: str) -> None:
    """Remembers for sign-up the address an emailed link was sent to (and which link it was)."""
    request.session[SESSION_SIGNUP] = {"email": email.strip().lower(), "via": via}


ORGANIZATION_NAME_MISSING = _(
    "Enter your organization's name, or use the invitation link your administrator sent you."
)


class PortalSignupForm(SignupForm):
    """allauth's sign-up plus the user's name and, unless they were invited, their organization.

    Reached from an invitation or a share email, the address is the one the email went to and
    cannot be changed here. Invited people join the inviting organization, so there is no
    organization to name. Share recipients may name their company; left empty, the licenses
    shared with them are kept in an organization under their own name.
    """

    full_name = forms.CharField(label=_("Your name"), max_length=200)
    organization_name = forms.CharField(
        label=_("Organization name"),
        max_length=200,
        error_messages={"required": ORGANIZATION_NAME_MISSING},
        help_text=_(
            "The company the licenses belong to: you become its administrator. If your company "
            "already uses the portal, ask one of its administrators to invite you instead."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = allauth_context.request
        session = request.session if request is not None else {}
        if request is not None and request.GET.get("another_address"):
            # "Not your address?": sign up as someone else, without the emailed link's state.
            for key in (SESSION_SIGNUP, "portal:invitation", "licensing:share-token"):
                session.pop(key, None)
        remembered = session.get(SESSION_SIGNUP) or {}
        self.invited = bool(session.get("portal:invitation"))
        self.via = SIGNUP_VIA_INVITATION if self.invited else remembered.get("via")
        same_link = self.via is not None and remembered.get("via") == self.via
        self.fixed_email: str = remembered.get("email", "") if same_link else ""
        if self.fixed_email:
            email = self.fields["email"]
            email.initial = self.fixed_email
            email.widget.attrs.update(readonly=True, autocomplete="off")
            email.help_text = (
                _("The address your invitation was sent to.")
                if self.via == SIGNUP_VIA_INVITATION
                else _("The address the licenses were shared with.")
            )
            if self.is_bound:  # whatever was posted: the address the email went to
                data: Any = self.data.copy()  # type: ignore[has-type]
                data[self.add_prefix("email")] = self.fixed_email
                self.data = data
        if self.invited:
            del self.fields["organization_name"]
        elif self.via == SIGNUP_VIA_SHARE:
            organization = self.fields["organization_name"]
            organization.required = False
            organization.help_text = _(
                "Optional. Leave it empty to keep the licenses shared with you in an "
                "organization under your own name; enter your company's name to register its "
                "purchases here as well."
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.invited or self.via == SIGNUP_VIA_SHARE:
            return cleaned
        # Once per field: an empty name (spaces included) already failed as required, with
        # this same message; a field with its own error (too long) keeps only that one.
        if "organization_name" in self.errors:
            return cleaned
        if not (cleaned.get("organization_name") or "").strip():
            self.add_error("organization_name", ORGANIZATION_NAME_MISSING)
        return cleaned

    def save(self, request: Any) -> Any:
        from .services import organization_create

        user = super().save(request)
        user.full_name = self.cleaned_data["full_name"]
        user.save(update_fields=["full_name"])
        if not self.invited:
            name = (self.cleaned_data.get("organization_name") or "").strip()
            organization_create(name=name or user.full_name or user.email, admin=user)
        request.session.pop(SESSION_SIGNUP, None)
        return user


def email_taken_message(email: str) -> str:
    """The refusal of an address that is another account's (adding it, making it primary)."""
    return _(
        "%(email)s is the address of another account. Log in to that account to use it, "
        "or add an address of your own."
    ) % {"email": email}


class PortalAddEmailForm(AddEmailForm):
    """allauth's "Add email address", refusing another account's address.

    allauth refuses it only with enumeration prevention off, and only when the other account has
    an EmailAddress row, which seeded, staff-made and invited users lack: so an address was
    accepted, its owner was sent a link confirming it for this account, and password resets for
    it went to both accounts. Refusing says no more than sign-up does (which refuses a taken
    address outright unless verification is mandatory), to someone logged in and limited to
    allauth's manage_email rate (10 a minute per user).
    """

    def clean_email(self) -> str:
        from .selectors import email_address_taken

        value = super().clean_email()
        assert self.user is not None
        if email_address_taken(value, by_other_than=self.user):
            raise forms.ValidationError(email_taken_message(value), code="email_taken")
        return value


class PortalResetPasswordForm(ResetPasswordForm):
    """allauth's password reset, sent only to accounts whose address it is.

    allauth looks the address up in the accounts' logins and in the addresses they added,
    verified or not: an address someone added to their own account without verifying it (another
    person's) got that account's reset link sent to the person who owns the address. An added
    address counts once it is verified. Unknown and known addresses still get the same page.
    """

    def clean_email(self) -> str:
        from allauth.account.models import EmailAddress

        email = super().clean_email()
        wanted = email.strip().lower()
        users: list[Any] = self.users  # type: ignore[has-type]
        verified = set(
            EmailAddress.objects.filter(
                email__iexact=wanted, verified=True, user__in=users
            ).values_list("user_id", flat=True)
        )
        self.users = [user for user in users if user.email.lower() == wanted or user.pk in verified]
        return email


# allauth's labels are Title Case ("Remember Me", "Current Password"; its pt-BR catalog too:
# "Lembrar de Mim"): the portal writes sentence case, with msgids of its own.
NEW_PASSWORD_LABELS = {"password1": _("New password"), "password2": _("New password (again)")}


class PortalLoginForm(LoginForm):
    """allauth's login, with a sentence-case label."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "remember" in self.fields:  # absent when ACCOUNT_SESSION_REMEMBER decides
            self.fields["remember"].label = _("Remember me")


class PortalChangePasswordForm(ChangePasswordForm):
    """allauth's password change, with sentence-case labels."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["oldpassword"].label = _("Current password")
        for name, label in NEW_PASSWORD_LABELS.items():
            self.fields[name].label = label


class PortalResetPasswordKeyForm(ResetPasswordKeyForm):
    """allauth's new password after a reset link, with sentence-case labels."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, label in NEW_PASSWORD_LABELS.items():
            self.fields[name].label = label


# Every email column is 254 characters (RFC 5321's limit on a path, which Django's EmailField
# model field uses); Django's EmailValidator lets addresses up to 320 through, so each email
# input says the limit itself rather than letting PostgreSQL refuse the row (a 500).
EMAIL_MAX_LENGTH = 254


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("Email address"), max_length=EMAIL_MAX_LENGTH)
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
    country = CountryField().formfield(label=_("Country"))
    contact_name = forms.CharField(label=_("Administrator's name"), max_length=200)
    contact_email = forms.EmailField(
        label=_("Administrator's email address"),
        max_length=EMAIL_MAX_LENGTH,
        help_text=_(
            "This person gets an invitation to claim the account as its administrator, and can "
            "then change or revoke your access."
        ),
    )


class CustomerInviteForm(forms.Form):
    """The administrator of a customer account the partner added, invited again."""

    contact_name = forms.CharField(label=_("Administrator's name"), max_length=200, required=False)
    contact_email = forms.EmailField(
        label=_("Administrator's email address"), max_length=EMAIL_MAX_LENGTH
    )


class CustomerSearchForm(forms.Form):
    q = forms.CharField(label=_("Search customers"), max_length=100, required=False)
