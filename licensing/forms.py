from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from portal.formats import short_date
from portal.forms import EMAIL_MAX_LENGTH
from portal.models import Organization
from portal.ratelimit import CodeGuard

from .codes import CodeFormatError, canonical_code
from .models import (
    CustomField,
    License,
    LicenseShare,
    SerialNumber,
    SupportRegistration,
    text_lines,
)
from .selectors import key_shown
from .services import (
    EXPORT_HEADER,
    KEY_HEADERS,
    SerialAlreadyRedeemed,
    SerialError,
    custom_value_clean,
    normalize_share_email,
    serial_check,
)
from .templatetags.licensing_tags import mask_key

# Typed codes (serials, notification IDs, vouchers): no autocorrect, capitals on phones.
CODE_INPUT_ATTRS = {"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}


class SerialForm(forms.Form):
    serial = forms.CharField(
        label=_("Serial number"),
        max_length=80,
        help_text=_("As printed on your license certificate, for example 7K3QD-M2XJ9-…"),
        widget=forms.TextInput(attrs={**CODE_INPUT_ATTRS, "autofocus": True}),
    )

    def __init__(
        self,
        *args: Any,
        request: HttpRequest,
        organization: Organization,
        typed: bool = True,
        **kwargs: Any,
    ) -> None:
        """`typed=False`: a code the user typed earlier and this form checked then (the wizard's
        confirmation): its format only, no lookup and no attempt counted; whoever redeems it
        reads it, locked, and refuses it if it changed meanwhile."""
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.typed = typed
        self.guard = CodeGuard(request, organization=organization, action="serial.rate_limited")
        self.serial_number: SerialNumber | None = None
        self.already_redeemed: License | None = None

    def clean_serial(self) -> str:
        raw = self.cleaned_data["serial"]
        if not self.typed:
            try:
                return canonical_code(raw)
            except CodeFormatError as exc:
                raise forms.ValidationError(
                    CODE_FORMAT_MESSAGES[exc.reason], code=exc.reason
                ) from exc
        try:
            # The lookup carries the failed-attempt budgets; whatever it found, nothing is said
            # about the code while one is used up (check_counted, or check() on a refusal).
            self.serial_number = serial_check(
                code=raw,
                organization=self.organization,
                today=timezone.localdate(),
                serials=self.guard.counted(SerialNumber.objects.all()),
            )
        except CodeFormatError as exc:
            self.guard.check()
            self.guard.failed()
            raise forms.ValidationError(CODE_FORMAT_MESSAGES[exc.reason], code=exc.reason) from exc
        except SerialAlreadyRedeemed as exc:
            self.guard.check()
            self.already_redeemed = exc.license
            raise forms.ValidationError(
                _("Your organization already redeemed this serial number: it is license %(key)s."),
                code="redeemed",
                # Whole only to whom may read it: not to a partner that may only obtain keys,
                # unless it obtained that license itself.
                params={
                    "key": key_shown(
                        actor=self.guard.user, organization=self.organization, key=exc.license.key
                    )
                },
            ) from exc
        except SerialError as exc:
            self.guard.check()
            self.guard.failed()
            raise forms.ValidationError(str(exc), code="refused") from exc
        self.guard.check_counted(self.serial_number)
        return self.serial_number.code


CODE_FORMAT_MESSAGES = {
    "empty": _("Enter the serial number printed on your license certificate."),
    "malformed": _(
        "This does not look like a serial number: use only the letters and digits printed on "
        "your license certificate."
    ),
    "check": _(
        "This serial number is not valid: check the serial number for typos (0 and O, 1 and I, "
        "8 and B look alike)."
    ),
}


def target_label(license: License, *, masked: bool = False) -> str:
    """A license as a renewal or upgrade choice: enough to tell it from its neighbours.

    `masked`: the key's last group only, for an actor who may not see the organization's
    licenses (a partner with the obtain-keys scope alone).
    """
    where = (
        _("host %(host)s") % {"host": license.host_id}
        if license.host_id
        else _("registered to %(company)s") % {"company": license.registration.company}
    )
    return _(
        "%(key)s — %(product)s %(version)s × %(quantity)s — maintenance until %(end)s — %(where)s"
    ) % {
        "key": mask_key(license.key) if masked else license.key,
        "product": license.version.product.name,
        "version": license.version.version,
        "quantity": license.quantity,
        "end": short_date(license.maintenance_end),
        "where": where,
    }


def comparable_registration(data: Mapping[str, Any]) -> dict[str, str]:
    """Registration values as text to compare what was prefilled with what was posted."""
    # str(): a country is a Country object on the model and a code in the form's data.
    return {name: text_lines(str(value)) for name, value in data.items()}


# A renewal or upgrade for one license, with the contacts left as prefilled from another
# registration (several licenses fit: the page could not know which one would be chosen).
OWN_REGISTRATION_SHOWN = _(
    "The contacts below are now those of the license you chose, which differed from the ones "
    "shown before. Check them, change them if needed, and continue."
)


class RegistrationForm(forms.ModelForm):
    """Product registration and support contacts; the target license and host ID when needed.

    `prefill`: the registration the contacts were prefilled with ({"id", "data"}, the wizard's
    PREFILL). Left unchanged while the chosen license has contacts of its own that differ, the
    form is refused once, showing that license's contacts: a renewal or upgrade never replaces a
    license's registration with another one nobody typed. `own_registration_shown` then holds
    the registration shown, as a new prefill.
    """

    target_license = forms.ChoiceField(label=_("License"), required=True)
    host_id = forms.CharField(
        label=_("Host ID"),
        max_length=200,
        help_text=_("The identifier of the machine this node-locked license is bound to."),
        error_messages={"required": _("Enter the host ID of the machine.")},
    )

    class Meta:
        model = SupportRegistration
        fields = list(SupportRegistration.FIELDS)
        widgets = {"address": forms.Textarea(attrs={"rows": 3})}

    def clean_address(self) -> str:
        return text_lines(self.cleaned_data["address"])

    def __init__(
        self,
        *args: Any,
        serial: SerialNumber | None,
        targets: list[License] | None = None,
        readable_keys: Collection[str] | None = None,
        prefill: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.targets = {str(license.pk): license for license in targets or []}
        self.prefill = prefill
        self.own_registration_shown: dict[str, Any] | None = None
        kind = serial.kind if serial else SerialNumber.Kind.NEW
        if kind == SerialNumber.Kind.NEW or not targets:
            del self.fields["target_license"]
        else:
            field = self.fields["target_license"]
            field.label = (
                _("License to upgrade")
                if kind == SerialNumber.Kind.UPGRADE
                else _("License to renew")
            )
            # Radio buttons, each naming its license in full; with several, none is chosen
            # for the user: renewing the wrong license cannot be undone.
            field.widget = forms.RadioSelect()
            field.choices = [  # type: ignore[attr-defined]
                (
                    str(lic.pk),
                    target_label(
                        lic, masked=readable_keys is not None and lic.key not in readable_keys
                    ),
                )
                for lic in targets
            ]
            field.error_messages["required"] = (
                _("Choose the license this serial number upgrades.")
                if kind == SerialNumber.Kind.UPGRADE
                else _("Choose the license this serial number renews.")
            )
            if len(targets) == 1:
                field.initial = str(targets[0].pk)
            else:
                field.help_text = _(
                    "Several of your licenses fit this serial number: choose one. Compare the "
                    "key, version, end of maintenance and host or registered company."
                )
        needs_host = (
            serial is not None
            and serial.version.product.node_locked
            and kind != SerialNumber.Kind.RENEWAL
        )
        if not needs_host:
            del self.fields["host_id"]

    def clean_host_id(self) -> str:
        host_id = " ".join(self.cleaned_data["host_id"].split())
        if not host_id:
            raise forms.ValidationError(_("Enter the host ID of the machine."))
        return host_id

    def registration_data(self) -> dict[str, str]:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}

    def chosen_target(self) -> License | None:
        """The license chosen to renew or upgrade, once the form is valid."""
        return self.targets.get(str(self.cleaned_data.get("target_license") or ""))

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        target = self.chosen_target() if "target_license" in self.fields else None
        if target is None or not self.prefill or self.errors:
            return cleaned
        own = {name: getattr(target.registration, name) for name in self.Meta.fields}
        prefilled = self.prefill.get("data")
        posted = comparable_registration(self.registration_data())
        if posted == prefilled and comparable_registration(own) != prefilled:
            # Shown as if typed: the page's fields read the form's data.
            data = self.data.copy()  # type: ignore[attr-defined]
            for name, value in comparable_registration(own).items():
                data[self.add_prefix(name)] = value
            self.data = data
            self.own_registration_shown = {
                "id": target.registration_id,
                "data": comparable_registration(own),
            }
            raise forms.ValidationError(OWN_REGISTRATION_SHOWN, code="own_registration")
        return cleaned


class ConfirmForm(forms.Form):
    """The confirmation step has no fields: what is confirmed comes from the server."""


class ShareForm(forms.Form):
    email = forms.CharField(
        label=_("Share with (email address)"),
        max_length=EMAIL_MAX_LENGTH,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
        error_messages={"required": _("Enter the email address of the person to share with.")},
    )
    access = forms.ChoiceField(
        label=_("Access"),
        choices=LicenseShare.Access.choices,
        initial=LicenseShare.Access.READ,
        help_text=_(
            "Read-only: see the license and download its file. Manage: also renew, "
            "rehost and edit its data."
        ),
    )

    def clean_email(self) -> str:
        return normalize_share_email(self.cleaned_data["email"])


class RehostForm(forms.Form):
    host_id = forms.CharField(
        label=_("New host ID"),
        max_length=200,
        error_messages={"required": _("Enter the host ID of the new machine.")},
    )


class RenewForm(forms.Form):
    serial = forms.CharField(
        label=_("Renewal serial number"),
        max_length=80,
        error_messages={"required": _("Enter the renewal serial number from your certificate.")},
    )


class SupportRegistrationForm(forms.ModelForm):
    class Meta:
        model = SupportRegistration
        fields = RegistrationForm.Meta.fields
        widgets = {"address": forms.Textarea(attrs={"rows": 3})}

    def clean_address(self) -> str:
        # Stored with LF line breaks, as imports and the seed store them (the browser posts CRLF).
        return text_lines(self.cleaned_data["address"])


MAX_FIELD_POSITION = 1000


class CustomFieldForm(forms.ModelForm):
    class Meta:
        model = CustomField
        fields = ["name", "field_type", "required", "choices", "position"]
        widgets = {"choices": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        # The column's own limit (32,767 on PostgreSQL, 2^63 - 1 on SQLite) reached the page as
        # "less than or equal to 9223372036854775807": a position only orders a few fields.
        position = self.fields["position"]
        position.validators.append(MaxValueValidator(MAX_FIELD_POSITION))
        position.widget.attrs["max"] = MAX_FIELD_POSITION
        position.error_messages["min_value"] = position.error_messages["max_value"] = _(
            "Enter a position from 0 to %(max)s: lower numbers come first."
        ) % {"max": number_format(MAX_FIELD_POSITION, force_grouping=True)}

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        clash = CustomField.objects.filter(organization=self.organization, name__iexact=name)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(
                _("There is already a field called %(name)s.") % {"name": name}
            )
        if name.lower() in KEY_HEADERS:
            raise forms.ValidationError(_("“key” is reserved for the license key column."))
        if name.lower() in EXPORT_HEADER:
            # The upload matches columns to fields by name: the export's own column would be
            # read as the field.
            raise forms.ValidationError(
                _(
                    "“%(name)s” is a column of the My licenses export. Choose another name, so "
                    "that an exported file uploads back into the right column."
                )
                % {"name": name}
            )
        return name

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # Options refused already (too long) are not also counted: one message, the one to act on.
        if cleaned.get("field_type") == CustomField.Type.CHOICE and "choices" not in self.errors:
            options = [
                line.strip() for line in (cleaned.get("choices") or "").splitlines() if line.strip()
            ]
            if len(options) < 2:
                self.add_error("choices", _("List at least two options, one per line."))
        return cleaned


class CustomValuesForm(forms.Form):
    """One input per custom field of the owner organization, validated by the field's type."""

    def __init__(
        self,
        *args: Any,
        custom_fields: list[CustomField],
        initial_values: dict[int, str] | None = None,
        bulk: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.custom_fields = custom_fields
        self.bulk = bulk
        for custom_field in custom_fields:
            name = f"cf_{custom_field.pk}"
            if custom_field.field_type == CustomField.Type.CHOICE:
                options = custom_field.choice_list
                kept = (initial_values or {}).get(custom_field.pk, "")
                # The license's value stays selectable (and selected) after the field's options
                # changed: otherwise the select shows "—" and saving wipes it.
                extra = [kept] if kept and kept not in options else []
                formfield: forms.Field = forms.ChoiceField(
                    choices=[("", "—"), *[(c, c) for c in [*options, *extra]]]
                )
            elif custom_field.field_type == CustomField.Type.DATE:
                formfield = forms.CharField(
                    max_length=40, widget=forms.DateInput(attrs={"type": "date"})
                )
            elif custom_field.field_type == CustomField.Type.NUMBER:
                # Its length is checked by custom_value_clean, with the field's own message.
                formfield = forms.CharField(widget=forms.TextInput(attrs={"inputmode": "decimal"}))
            else:
                formfield = forms.CharField(max_length=500)
            formfield.label = custom_field.name
            # In bulk an empty input means "leave as is", so nothing is required there.
            formfield.required = False
            if bulk:
                formfield.help_text = _("Leave empty to keep each license's value.")
            self.fields[name] = formfield
            if initial_values and custom_field.pk in initial_values:
                self.initial[name] = initial_values[custom_field.pk]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.values: dict[int, str] = {}
        for custom_field in self.custom_fields:
            name = f"cf_{custom_field.pk}"
            raw = cleaned.get(name, "")
            if self.bulk and not (raw or "").strip():
                continue
            if self.add_prefix(name) not in self.data:
                # Not on the page that was submitted (a field added since it was opened):
                # left as it is. An input posted empty clears its value.
                continue
            now = "" if self.bulk else str(self.initial.get(name) or "")
            try:
                self.values[custom_field.pk] = custom_value_clean(custom_field, raw, current=now)
            except forms.ValidationError as exc:
                self.add_error(name, exc)
        return cleaned


class CsvUploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "Columns: key, then one column per custom field (its name as header). Other "
            "columns, such as those of the My licenses export, are ignored."
        ),
    )
