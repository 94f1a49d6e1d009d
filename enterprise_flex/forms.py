"""Forms validate input only; the rules they show early (quantity, period) live in services."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from portal.forms import EMAIL_MAX_LENGTH
from portal.models import Membership

from .models import EFContractUser, EFLine, EFSite
from .services import MAX_QUANTITY, quantity_problem

# Digits only: Django's IntegerField reads "1.000" as 1 (it drops a ".000" fraction), "1_000" as
# 1000 and "١٢" as 12, so a Brazilian's thousand was saved as one. A quantity is typed with
# plain digits; a point, comma or underscore is refused with how to write it, never guessed.
QUANTITY_DIGITS = re.compile(r"-?[0-9]+")
QUANTITY_SEPARATORS = re.compile(r"[.,_]")
# Thousands groups with one separator throughout: "1.000", "1,000,000", "1_000".
QUANTITY_GROUPED = re.compile(r"[1-9][0-9]{0,2}([.,_])[0-9]{3}(\1[0-9]{3})*")
QUANTITY_MAX_CHARS = 12  # a million has 7 digits; longer is over the limit, not a huge int()


class QuantityField(forms.Field):
    """A whole quantity written with ASCII digits, between min_value and MAX_QUANTITY."""

    default_error_messages = {
        "invalid": _("Enter a whole number, like 25."),
        # As number custom fields say it (licensing.services.manage._ambiguous_number).
        "grouped": _("%(field)s: write “%(value)s” without thousands separators: %(whole)s."),
        "separator": _(
            "“%(value)s” is not a whole number: write the quantity with digits only, without a "
            "point, comma or underscore, like 25."
        ),
        "min_value": _("Enter a quantity of at least %(limit_value)s."),
        "max_value": _("Enter a quantity of at most %(limit_value)s."),
    }

    def __init__(self, *, min_value: int = 1, max_value: int = MAX_QUANTITY, **kwargs: Any) -> None:
        self.min_value, self.max_value = min_value, max_value
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "numeric"}))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if not text:
            return None
        if QUANTITY_DIGITS.fullmatch(text):
            if len(text.lstrip("-0")) > QUANTITY_MAX_CHARS:
                self._out_of_range("max_value" if text[0] != "-" else "min_value")
            return int(text)
        if QUANTITY_GROUPED.fullmatch(text):
            raise forms.ValidationError(
                self.error_messages["grouped"],
                code="ambiguous",
                params={"field": self.label, "value": text, "whole": re.sub(r"[.,_]", "", text)},
            )
        if QUANTITY_SEPARATORS.search(text):
            raise forms.ValidationError(
                self.error_messages["separator"], code="ambiguous", params={"value": text}
            )
        raise forms.ValidationError(self.error_messages["invalid"], code="invalid")

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value is None:
            return
        if value < self.min_value:
            self._out_of_range("min_value")
        if value > self.max_value:
            self._out_of_range("max_value")

    def _out_of_range(self, code: str) -> None:
        limit = self.min_value if code == "min_value" else self.max_value
        # Grouped as the language writes it: 1,000,000 or 1.000.000.
        raise forms.ValidationError(
            self.error_messages[code],
            code=code,
            params={"limit_value": number_format(limit, force_grouping=True)},
        )


def _quantity_field(label: Any, **kwargs: Any) -> QuantityField:
    return QuantityField(label=label, **kwargs)


class LineChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: EFLine) -> str:  # type: ignore[override]
        version = obj.version
        if obj.overage_allowed:
            text = _(
                "%(product)s %(version)s · %(remaining)s of %(committed)s left, overage allowed"
            )
        else:
            text = _("%(product)s %(version)s · %(remaining)s of %(committed)s left")
        return str(text) % {
            "product": version.product.name,
            "version": version.version,
            "remaining": number_format(obj.remaining_quantity, force_grouping=True),
            "committed": number_format(obj.committed_quantity, force_grouping=True),
        }


class LineForm(forms.Form):
    line = LineChoiceField(
        label=_("Product"),
        queryset=EFLine.objects.none(),
        widget=forms.RadioSelect,
        empty_label=None,
        error_messages={"invalid_choice": _("Choose one of this contract's products.")},
    )

    def __init__(self, *args: Any, lines: list[EFLine], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["line"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = EFLine.objects.filter(pk__in=[line.pk for line in lines]).select_related(
            "version__product"
        )


class SiteChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: EFSite) -> str:  # type: ignore[override]
        return f"{obj.name} · {obj.contact_email}" if obj.contact_email else obj.name


class QuantitySiteForm(forms.Form):
    quantity = _quantity_field(_("Quantity"))
    site = SiteChoiceField(
        label=_("Site"),
        queryset=EFSite.objects.none(),
        empty_label=None,
        help_text=_("The site's contact receives the key and the license file by email."),
        error_messages={"invalid_choice": _("Choose one of this contract's active sites.")},
    )
    host_id = forms.CharField(
        label=_("Host ID"),
        max_length=200,
        required=False,
        help_text=_("The product is node-locked: the ID of the machine it will run on."),
    )

    def __init__(self, *args: Any, line: EFLine | None, sites: list[EFSite], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.line = line
        field = self.fields["site"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = EFSite.objects.filter(pk__in=[s.pk for s in sites]).order_by("name")
        if not sites:
            # An empty list and "choose one of the active sites" leave the user stuck.
            no_site = _(
                "This contract has no active site to send keys to. Ask its configuration user "
                "to add a site or make one active."
            )
            field.help_text = no_site
            field.error_messages = {
                **field.error_messages,
                "required": no_site,
                "invalid_choice": no_site,
            }
        if line is None or not line.version.product.node_locked:
            del self.fields["host_id"]
        else:
            self.fields["host_id"].required = True

    def clean_quantity(self) -> int:
        quantity: int = self.cleaned_data["quantity"]
        if self.line is not None:
            problem = quantity_problem(quantity, line=self.line)
            if problem:
                raise forms.ValidationError(problem, code="quantity")
        return quantity


class ConfirmForm(forms.Form):
    """The last step has nothing to enter: the button is the decision."""


class SiteForm(forms.ModelForm):
    class Meta:
        model = EFSite
        fields = ["name", "address", "country", "contact_name", "contact_email", "contact_phone"]
        widgets = {"address": forms.Textarea(attrs={"rows": 3})}


class SiteEditForm(SiteForm):
    class Meta(SiteForm.Meta):
        fields = [*SiteForm.Meta.fields, "active"]


LEVEL_CHOICES = EFContractUser.Level.choices


class MemberChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Membership) -> str:  # type: ignore[override]
        user = obj.user
        return f"{user.full_name} · {user.email}" if user.full_name else user.email


class AddUserForm(forms.Form):
    member = MemberChoiceField(
        label=_("User of your organization"),
        queryset=Membership.objects.none(),
        error_messages={"invalid_choice": _("Choose a user of your organization.")},
    )
    level = forms.ChoiceField(label=_("Level"), choices=LEVEL_CHOICES)

    def __init__(self, *args: Any, members: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["member"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = members


class InviteForm(forms.Form):
    email = forms.EmailField(
        label=_("Email address"),
        max_length=EMAIL_MAX_LENGTH,
        error_messages={"invalid": _("Enter one email address, like name@example.com.")},
    )
    level = forms.ChoiceField(label=_("Level"), choices=LEVEL_CHOICES)


class LevelForm(forms.Form):
    level = forms.ChoiceField(label=_("Level"), choices=LEVEL_CHOICES)


class DeploymentReportForm(forms.Form):
    """One deployed-quantity input per (line, site) row of the report, plus one row to add."""

    add_line = forms.TypedChoiceField(
        label=_("Product"),
        coerce=int,
        required=False,
        error_messages={"invalid_choice": _("Choose one of this contract's products.")},
    )
    add_site = forms.TypedChoiceField(
        label=_("Site"),
        coerce=int,
        required=False,
        error_messages={"invalid_choice": _("Choose one of this contract's active sites.")},
    )
    add_quantity = _quantity_field(_("Deployed quantity"), min_value=0, required=False)

    def __init__(
        self,
        *args: Any,
        rows: list[Any],
        lines: list[EFLine],
        sites: list[EFSite],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.rows = rows
        for row in rows:
            self.fields[row.key] = _quantity_field(
                f"{row.line.version.product.name} {row.line.version.version} · {row.site.name}",
                min_value=0,
                initial=row.value,
            )
        self.fields["add_line"].choices = [("", "—")] + [  # type: ignore[attr-defined]
            (line.pk, f"{line.version.product.name} {line.version.version}") for line in lines
        ]
        self.fields["add_site"].choices = [("", "—")] + [  # type: ignore[attr-defined]
            (site.pk, site.name) for site in sites
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        parts = [data.get("add_line"), data.get("add_site"), data.get("add_quantity")]
        filled = [p not in (None, "") for p in parts]
        if any(filled) and not all(filled):
            raise forms.ValidationError(
                _("To add a row, choose a product and a site and enter the deployed quantity.")
            )
        return data

    def entries(self) -> dict[tuple[int, int], int]:
        """(line id, site id) → deployed quantity, as entered."""
        found = {
            (row.line.pk, row.site.pk): self.cleaned_data[row.key]
            for row in self.rows
            if self.cleaned_data.get(row.key) is not None
        }
        if self.cleaned_data.get("add_line") not in (None, ""):
            key = (self.cleaned_data["add_line"], self.cleaned_data["add_site"])
            found[key] = self.cleaned_data["add_quantity"]
        return found

    def row_fields(self) -> list[tuple[Any, Any]]:
        return [(row, self[row.key]) for row in self.rows]
