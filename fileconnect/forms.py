from __future__ import annotations

from django import forms

from licensing.codes import canonical_code
from licensing.forms import SerialForm
from licensing.models import SerialNumber


class SerialAccessForm(SerialForm):
    """The serial number way into FileConnect.

    Get a key's own form does the checking, so a serial that Get a key refuses is refused here
    with the same words and spends the same failed-attempt budget. The one difference: a serial
    the organization already redeemed is a refusal in Get a key and a way in here.
    """

    def clean_serial(self) -> str:
        try:
            return super().clean_serial()
        except forms.ValidationError:
            if self.already_redeemed is None:
                raise
            serial = (
                SerialNumber.objects.select_related("version__product")
                .filter(
                    code=canonical_code(self.cleaned_data["serial"]),
                    status=SerialNumber.Status.REDEEMED,
                    redeemed_by=self.organization,
                )
                .first()
            )
            if serial is None:  # it was redeemed by this organization a moment ago
                raise
            self.serial_number = serial
            return serial.code
