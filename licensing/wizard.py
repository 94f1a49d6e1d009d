"""The Get-a-key wizard: serial number → registration and contacts → confirm → license key.

The state lives in the server-side session (django-formtools). Only the last step writes, and
everything written comes from the serial on the server, never from the client. A confirmation
submitted twice (double click, two tabs, a replayed POST) lands on the same result page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from formtools.wizard.views import SessionWizardView

from portal.http import PortalRequest, organization_required
from portal.policy import Action

from .codes import CodeFormatError, canonical_code
from .forms import ConfirmForm, RegistrationForm, SerialForm
from .models import License, SerialNumber, add_months
from .selectors import latest_registration
from .services import LicensingError, SerialAlreadyRedeemed, serial_redeem, target_licenses

LAST_RESULT_KEY = "get-a-key:last-result"

STEP_TITLES = {
    "serial": gettext_lazy("Serial number"),
    "registration": gettext_lazy("Registration and contacts"),
    "confirm": gettext_lazy("Confirm"),
}


class PortalWizard(SessionWizardView):
    """The portal's wizards: a POST naming a step the wizard does not have restarts it."""

    restart_url: str

    def posted_step(self) -> str | None:
        return self.request.POST.get(f"{self.get_prefix(self.request)}-current_step")

    def post(self, *args: Any, **kwargs: Any) -> HttpResponse:
        goto = self.request.POST.get("wizard_goto_step")
        if self.posted_step() not in self.steps.all or (
            goto is not None and goto not in self.steps.all
        ):
            # A tampered or stale form: start again rather than fail.
            self.storage.reset()
            messages.warning(self.request, _("Your session moved on; please start again."))
            return redirect(self.restart_url)
        return super().post(*args, **kwargs)


@method_decorator(organization_required(action=Action.OBTAIN_KEYS), name="dispatch")
class GetAKeyWizard(PortalWizard):
    form_list = [
        ("serial", SerialForm),
        ("registration", RegistrationForm),
        ("confirm", ConfirmForm),
    ]
    template_name = "licensing/get_a_key.html"
    restart_url = "get-a-key"
    request: PortalRequest

    # -- state ------------------------------------------------------------------------------

    def _serial(self) -> SerialNumber | None:
        """The serial of step 1, re-read from the database on every request."""
        data = self.storage.get_step_data("serial")
        if not data:
            return None
        raw = data.get(f"{self.get_form_prefix('serial')}-serial", "")
        try:
            code = canonical_code(raw)
        except CodeFormatError:
            return None
        return SerialNumber.objects.select_related("version__product").filter(code=code).first()

    def _targets(self, serial: SerialNumber | None) -> list[License]:
        if serial is None or serial.kind == SerialNumber.Kind.NEW:
            return []
        return list(target_licenses(serial=serial, organization=self.request.organization))

    # -- formtools hooks --------------------------------------------------------------------

    def get_form_kwargs(self, step: str | None = None) -> dict[str, Any]:
        if step == "serial":
            return {"request": self.request, "organization": self.request.organization}
        if step == "registration":
            serial = self._serial()
            return {"serial": serial, "targets": self._targets(serial)}
        return {}

    def get_form_initial(self, step: str) -> dict[str, Any]:
        if step != "registration":
            return {}
        previous = latest_registration(organization=self.request.organization)
        if previous is not None:
            return {name: getattr(previous, name) for name in RegistrationForm.Meta.fields}
        organization = self.request.organization
        user = self.request.user
        return {
            "company": organization.name,
            "address": organization.address,
            "country": organization.country,
            "primary_name": user.full_name,
            "primary_email": user.email,
            "technical_name": user.full_name,
            "technical_email": user.email,
        }

    def get_context_data(self, form: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(form=form, **kwargs)
        context["step_titles"] = [
            (index + 1, name, STEP_TITLES[name]) for index, name in enumerate(self.steps.all)
        ]
        context["step_titles"].append((len(self.steps.all) + 1, "result", _("License key")))
        if self.steps.current in ("registration", "confirm"):
            serial = self._serial()
            context["serial"] = serial
            if serial is not None:
                today = timezone.localdate()
                context["maintenance_start"] = today
                context["maintenance_end"] = add_months(today, serial.maintenance_months)
        if self.steps.current == "confirm":
            registration = self.get_cleaned_data_for_step("registration") or {}
            context["registration"] = registration
            target_id = registration.get("target_license")
            target = next(
                (t for t in self._targets(context.get("serial")) if str(t.pk) == target_id), None
            )
            context["target"] = target
            serial = context.get("serial")
            if target is not None and serial is not None and serial.kind == "renewal":
                today = timezone.localdate()
                context["maintenance_start"] = target.maintenance_start
                context["maintenance_end"] = add_months(
                    max(target.maintenance_end, today), serial.maintenance_months
                )
        return context

    def post(self, *args: Any, **kwargs: Any) -> HttpResponse:
        # A confirmation for a wizard that already finished (double submit, second tab): show
        # the result of the first one instead of starting over.
        if self.posted_step() == "confirm" and "wizard_goto_step" not in self.request.POST:
            serial = self._serial()
            if serial is None and self.request.session.get(LAST_RESULT_KEY):
                return redirect("get-a-key-result", pk=self.request.session[LAST_RESULT_KEY])
            if (
                serial is not None
                and serial.status == SerialNumber.Status.REDEEMED
                and serial.redeemed_by_id == self.request.organization.pk
                and serial.license_id
            ):
                return self._finish(serial.license_id)
        return super().post(*args, **kwargs)

    def render_revalidation_failure(self, failed_step: str, form: Any, **kwargs: Any) -> Any:
        if failed_step == "serial" and getattr(form, "already_redeemed", None) is not None:
            return self._finish(form.already_redeemed.pk)
        return super().render_revalidation_failure(failed_step, form, **kwargs)

    def done(self, form_list: Any, form_dict: dict[str, Any], **kwargs: Any) -> HttpResponse:
        serial_form: SerialForm = form_dict["serial"]
        registration: RegistrationForm = form_dict["registration"]
        try:
            result = serial_redeem(
                code=serial_form.cleaned_data["serial"],
                organization=self.request.organization,
                registration=registration.registration_data(),
                acting_user=self.request.user,
                target_license_id=registration.cleaned_data.get("target_license"),
                host_id=registration.cleaned_data.get("host_id", ""),
            )
        except SerialAlreadyRedeemed as exc:
            return self._finish(exc.license.pk)
        except LicensingError as exc:
            messages.error(self.request, str(exc))
            self.storage.reset()
            return redirect("get-a-key")
        if result.renewed:
            messages.success(self.request, _("Maintenance renewed. A new license file was issued."))
        else:
            messages.success(self.request, _("Your license key is ready."))
        return self._finish(result.license.pk)

    def _finish(self, license_id: object) -> HttpResponseRedirect:
        self.storage.reset()
        self.request.session[LAST_RESULT_KEY] = str(license_id)
        return HttpResponseRedirect(reverse("get-a-key-result", kwargs={"pk": license_id}))
