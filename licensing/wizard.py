"""The Get-a-key wizard: serial number → registration and contacts → confirm → license key.

The state lives in the server-side session (django-formtools). Only the last step writes, and
everything written comes from the serial on the server, never from the client. A confirmation
submitted twice (double click, two tabs, a replayed POST) lands on the same result page.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Collection
from typing import Any

from django import forms
from django.contrib import messages
from django.core import serializers
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from formtools.wizard.forms import ManagementForm
from formtools.wizard.storage.base import BaseStorage
from formtools.wizard.views import SessionWizardView

from portal.http import PortalRequest, organization_required
from portal.policy import Action

from .codes import CodeFormatError, canonical_code
from .forms import ConfirmForm, RegistrationForm, SerialForm, comparable_registration
from .models import License, ProductVersion, SerialNumber, SupportRegistration, add_months
from .selectors import key_shown, keys_readable, latest_registration, licenses_visible_to
from .services import (
    LicensingError,
    SerialAlreadyRedeemed,
    SerialTargetError,
    serial_redeem,
    serial_upgrade_maintenance,
    target_licenses,
)
from .templatetags.licensing_tags import mask_key

STEP_TITLES = {
    "serial": gettext_lazy("Serial number"),
    "registration": gettext_lazy("Registration and contacts"),
    "confirm": gettext_lazy("Confirm"),
}


# The serial as the serial step found it, for the later steps' forms and pages: the registration
# step and the confirmation do not read it again, since the redemption reads it, locked, and
# refuses it if it changed meanwhile. Kept in the wizard's server-side storage.
SERIAL_SNAPSHOT = "serial"


def _snapshot_dump(serial: SerialNumber) -> dict[str, str]:
    rows = [serial, serial.version, serial.version.product]
    return {"code": serial.code, "rows": serializers.serialize("json", rows)}


def _snapshot_load(snapshot: dict[str, str] | None, code: str) -> SerialNumber | None:
    if not snapshot or snapshot.get("code") != code:
        return None
    serial, version, product = (
        row.object for row in serializers.deserialize("json", snapshot["rows"])
    )
    assert isinstance(serial, SerialNumber) and isinstance(version, ProductVersion)
    version.product = product  # type: ignore[assignment]
    serial.version = version
    return serial


# The support registration the registration step was prefilled with: its id and its values.
PREFILL = "prefill"
# The license the confirmation page named and the seats it showed it with: confirming refuses
# a license whose quantity changed since (serial_redeem's target_quantity).
SEEN_SEATS = "seen_seats"


STARTED_OVER = gettext_lazy("This request started over; please check and confirm again.")
# The same wizard was opened in another tab and moved on there: this tab's page is stale, and
# the session's instance holds the other tab's choices, which this tab must never confirm.
REPLACED = gettext_lazy(
    "This page was replaced by the same form opened in another tab. Start again here, or "
    "continue in the other tab."
)
# The organization changed under an open wizard (the switcher, or a partner now acting for
# another customer): what it holds was typed and checked for the other one.
OTHER_ORGANIZATION = gettext_lazy(
    "You are now working for %(organization)s, so this started over. Enter the details again "
    "for %(organization)s."
)
# Finished instances of this session: token → the wizard (its prefix) and its result's id, so
# that a second submit of a confirmation (double click, back and resubmit) lands on its own
# result and nobody else's. Every wizard keeps its results here: a token is taken only by the
# wizard that issued it (an EF drawdown's id is no license, nor of another contract).
RESULTS_KEY = "wizard:results"
RESULTS_KEPT = 20
# The name of the "Start over" button every wizard page carries (_wizard_buttons.html).
START_OVER = "wizard_start_over"


class _DetachedStorage(BaseStorage):
    """Wizard state kept only for one response, not in the session: a page of the first step
    that leaves the session's instance (another tab's) as it is."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.init_data()


class InstanceManagementForm(ManagementForm):
    """formtools' management form plus the token of the wizard instance the page belongs to,
    and the revision of its answers the page was rendered from."""

    instance = forms.CharField(widget=forms.HiddenInput, required=False)
    revision = forms.CharField(widget=forms.HiddenInput, required=False)


# Tabs share one instance: another tab may have changed its answers since this page was shown.
CHANGED_ELSEWHERE = gettext_lazy(
    "These details were changed in another tab after this page was shown. Check them here, "
    "then confirm."
)


class PortalWizard(SessionWizardView):
    """The portal's wizards: every instance has a token, and every page carries it.

    An instance starts with a GET when none is in progress, with a POST of the first step that
    carries no token (a script, a page from before the session), or with "Start over". A GET
    while one is in progress (the menu, a second tab, the language switch) shows it where it
    stands: tabs share one progress, and only an explicit "Start over" (a POST) throws it away.
    Any other POST must carry the token of the instance the session holds: a page of an
    instance that has moved on (started over, or finished) gets "this request started over"
    and the live instance's current step, never that instance's confirmation or another
    instance's result. The token is also the idempotency key of the final write.
    """

    restart_url: str
    result_url = "get-a-key-result"

    def readable_keys(self, keys: Collection[str]) -> set[str]:
        """Which of the organization's existing keys the pages show whole (others show only
        their last group): the rule of every page, licensing.selectors.keys_readable. A partner
        with the obtain-keys scope alone renews or upgrades licenses it may not list, and reads
        whole only the keys it obtained or renewed."""
        return keys_readable(
            actor=self.request.user, organization=self.request.organization, keys=keys
        )

    def key_shown(self, key: str) -> str:
        """`key` as this person may read it."""
        return key_shown(actor=self.request.user, organization=self.request.organization, key=key)

    # -- the instance ---------------------------------------------------------------------

    @property
    def instance(self) -> str:
        return str(self.storage.extra_data.get("instance") or "")

    def _organization_id(self) -> int | None:
        organization = getattr(self.request, "organization", None)
        return organization.pk if organization is not None else None

    def start_instance(self) -> str:
        """Resets the wizard to its first step under a new token, for the request's organization."""
        self.storage.reset()
        self.storage.current_step = self.steps.first
        token = secrets.token_urlsafe(24)
        self.storage.extra_data = {"instance": token, "organization": self._organization_id()}
        return token

    def begun_elsewhere(self) -> bool:
        """Whether the session's instance was begun in another organization than the request's."""
        extra = self.storage.extra_data
        return bool(self.instance) and extra.get("organization") != self._organization_id()

    def posted_instance(self) -> str:
        return self.request.POST.get(f"{self.prefix}-instance", "")

    def finished_result(self, token: str) -> str | None:
        """The result of this wizard's instance `token` if it finished in this session."""
        results: dict[str, Any] = self.request.session.get(RESULTS_KEY) or {}
        finished = results.get(token) if token else None
        # A plain id was written before results named their wizard: its wizard is unknown.
        if isinstance(finished, dict) and finished.get("wizard") == self.prefix:
            return str(finished["id"])
        return None

    def result_location(self, result_id: object) -> str:
        """Where a finished instance's result is shown."""
        return reverse(self.result_url, kwargs={"pk": result_id})

    def finish(self, result_id: object) -> HttpResponseRedirect:
        """Ends this instance on its result page; a repeated submit of it finds that page."""
        results: dict[str, Any] = dict(self.request.session.get(RESULTS_KEY) or {})
        token = self.instance
        if token:
            results[token] = {"wizard": self.prefix, "id": str(result_id)}
            self.request.session[RESULTS_KEY] = dict(list(results.items())[-RESULTS_KEPT:])
        self.storage.reset()
        return HttpResponseRedirect(self.result_location(result_id))

    def started_over(self) -> HttpResponse:
        """The posted page belongs to an instance that moved on: say so, show the live one."""
        if self.posted_instance() and self.instance and self.steps.current != self.steps.first:
            return self.replaced()
        messages.warning(self.request, STARTED_OVER)
        if not self.instance:
            self.start_instance()
        return self.render_goto_step(self.steps.current)

    def replaced(self) -> HttpResponse:
        """The posted page is of an instance another tab replaced, and that tab moved on: its
        steps hold the other tab's choices (Confirm in one tab confirmed the other's product),
        so this tab gets an empty first step. The page carries no token: submitted, it starts
        a new instance (post); until then the other tab carries on."""
        messages.warning(self.request, REPLACED)
        self.storage = _DetachedStorage(self.prefix, self.request, None)
        self.storage.current_step = self.steps.first
        return self.render(self.get_form())

    def link_matches(self) -> bool:
        """Whether the GET's parameters (a link that preselects something) ask for what the
        instance in progress already holds; a link for something else starts over with it."""
        return True

    def resume(self) -> HttpResponse | None:
        """The instance in progress where it stands, for a GET; None if it must start anew.

        Opening the wizard again (the menu, a second tab, the language switch's redirect) used
        to reset it: the other tab's serial and contacts were gone, and its Confirm only said
        "started over". An instance that finished, or was begun for another organization, is
        not resumed; neither is one a link asks to replace with something else.
        """
        token = self.instance
        if not token or self.finished_result(token) is not None:
            return None
        if self.begun_elsewhere():
            if self.storage.data.get(self.storage.step_data_key):
                messages.warning(
                    self.request,
                    OTHER_ORGANIZATION % {"organization": self.request.organization.name},
                )
            return None
        if not self.link_matches():
            return None
        return self.render_goto_step(self.steps.current)

    def keep_typed_on_back(self, goto_step: str) -> None:
        """Back keeps what was typed on the page it leaves, valid or not, to show it again.

        formtools' Back stores nothing: the address and contacts typed on the registration step
        were gone on the way forward again. Only a step going back is kept (never the first
        one, whose code is checked against the failed-attempt budget when typed), and only from
        the page of the live instance. Kept data is checked again like any other: going forward
        validates the step, and confirming revalidates every step (render_done).
        """
        request = self.request
        step = self.posted_step()
        steps = self.steps.all
        if (
            request.method != "POST"
            or request.POST.get("wizard_goto_step") != goto_step
            or not self.instance
            or self.posted_instance() != self.instance
            or step not in steps
            or goto_step not in steps
            or steps.index(goto_step) >= steps.index(step)
        ):
            return
        form = self.get_form(step=step, data=request.POST, files=request.FILES)
        # Valid: as Next stores it (a wizard's process_step may drop later steps that depended
        # on a changed choice). Invalid: the raw data, shown again with its errors.
        data = self.process_step(form) if form.is_valid() else self.get_form_step_data(form)
        self.storage.set_step_data(step, data)
        for name in list(vars(self)):
            if name.startswith("_cleaned_data_cache_"):
                delattr(self, name)

    # -- formtools hooks --------------------------------------------------------------------

    def get(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        resumed = self.resume()
        if resumed is not None:
            return resumed
        self.start_instance()
        return self.render(self.get_form())

    def render_goto_step(self, goto_step: str, **kwargs: Any) -> HttpResponse:
        self.keep_typed_on_back(goto_step)
        return super().render_goto_step(goto_step, **kwargs)

    def start_over(self) -> HttpResponse:
        """The "Start over" button: the instance in progress (every tab's) is dropped, and the
        GET after the redirect starts a new one."""
        self.storage.reset()
        messages.info(self.request, _("Started over: what you had entered was cleared."))
        return redirect(self.restart_url)

    def posted_step(self) -> str | None:
        return self.request.POST.get(f"{self.prefix}-current_step")

    def revision(self) -> str:
        """A digest of the answers the instance holds: a Confirm posted from a page shown
        before another tab changed them must not confirm what that page did not show."""
        answers = self.storage.data.get(self.storage.step_data_key) or {}
        encoded = json.dumps(answers, sort_keys=True, default=str).encode()
        return hashlib.sha256(encoded).hexdigest()[:16]

    def post(self, *args: Any, **kwargs: Any) -> HttpResponse:
        if START_OVER in self.request.POST:
            return self.start_over()
        goto = self.request.POST.get("wizard_goto_step")
        step = self.posted_step()
        if step not in self.steps.all or (goto is not None and goto not in self.steps.all):
            # A tampered or stale form: start again rather than fail.
            self.storage.reset()
            messages.warning(self.request, _("Your session moved on; please start again."))
            return redirect(self.restart_url)
        if self.begun_elsewhere():
            # Its serial, contacts and prefilled registration belong to the other organization:
            # never let them reach this one's key. Start over, and say why.
            self.start_instance()
            messages.warning(
                self.request,
                OTHER_ORGANIZATION % {"organization": self.request.organization.name},
            )
            return self.render(self.get_form())
        posted = self.posted_instance()
        if not posted and step == self.steps.first and goto is None:
            self.start_instance()
        elif not posted or posted != self.instance:
            finished = self.finished_result(posted)
            if finished and step == self.steps.last and goto is None:
                return HttpResponseRedirect(self.result_location(finished))
            return self.started_over()
        posted_revision = self.request.POST.get(f"{self.prefix}-revision")
        if (
            step == self.steps.last
            and goto is None
            and posted_revision
            and posted_revision != self.revision()
        ):
            # Shown before another tab changed the answers: show them as they are now.
            messages.warning(self.request, CHANGED_ELSEWHERE)
            return self.render(self.get_form())
        return super().post(*args, **kwargs)

    def get_context_data(self, form: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(form=form, **kwargs)
        context["wizard"]["management_form"] = InstanceManagementForm(
            prefix=self.prefix,
            initial={
                "current_step": self.steps.current,
                "instance": self.instance,
                "revision": self.revision(),
            },
        )
        # "Start over" once something was entered: before that there is nothing to throw away.
        context["can_start_over"] = bool(self.storage.data.get(self.storage.step_data_key))
        return context


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

    # What one request already resolved, so that each step's forms, its page and the final write
    # do not read the same serial, licenses and registration again (formtools builds a step's
    # form several times per request: to validate, to revalidate every step, for the page).
    _serial_cache: tuple[str, SerialNumber | None] | None = None
    _targets_cache: tuple[tuple[int, bool], list[License]] | None = None
    _binding = False
    _confirming = False

    def setup(self, request: Any, *args: Any, **kwargs: Any) -> None:
        super().setup(request, *args, **kwargs)
        self._serial_forms: list[SerialForm] = []

    def _serial_code(self) -> str | None:
        data = self.storage.get_step_data("serial")
        if not data:
            return None
        raw = data.get(f"{self.get_form_prefix('serial')}-serial", "")
        try:
            return canonical_code(raw)
        except CodeFormatError:
            return None

    def _serial(self) -> SerialNumber | None:
        """The serial of step 1, as the serial step checked it (or read once per request)."""
        code = self._serial_code()
        if code is None:
            return None
        if self._serial_cache is None or self._serial_cache[0] != code:
            # The serial step's form of this request, once validated, holds the row it checked;
            # later steps have the snapshot that form left in the session.
            checked = [
                form.serial_number
                for form in self._serial_forms
                if form.serial_number is not None and form.serial_number.code == code
            ]
            serial = (
                checked[-1]
                if checked
                else _snapshot_load(self.storage.extra_data.get(SERIAL_SNAPSHOT), code)
                or SerialNumber.objects.select_related("version__product").filter(code=code).first()
            )
            self._serial_cache = (code, serial)
        return self._serial_cache[1]

    def _targets(self, serial: SerialNumber | None) -> list[License]:
        """The licenses the serial may apply to. The pages offer only those whose seats fit;
        confirming accepts the one chosen whatever its seats now, so that serial_redeem, on
        the locked row, says what changed ("now has 2 seats, not 20") instead of the form's
        "not one of the available choices"."""
        if serial is None or serial.kind == SerialNumber.Kind.NEW:
            return []
        cache_key = (serial.pk, self._confirming)
        if self._targets_cache is None or self._targets_cache[0] != cache_key:
            targets = list(
                target_licenses(
                    serial=serial,
                    organization=self.request.organization,
                    any_seats=self._confirming,
                )
            )
            self._targets_cache = (cache_key, targets)
        return self._targets_cache[1]

    # -- formtools hooks --------------------------------------------------------------------

    def get_form(self, step: str | None = None, data: Any = None, files: Any = None) -> Any:
        # A form bound to posted or stored data never shows its initial values: reading the
        # last registration to prefill it would be a query for nothing.
        self._binding = data is not None
        try:
            form = super().get_form(step=step, data=data, files=files)
        finally:
            self._binding = False
        if isinstance(form, SerialForm):
            self._serial_forms.append(form)
        return form

    def process_step(self, form: Any) -> Any:
        if isinstance(form, SerialForm) and form.serial_number is not None:
            self.storage.extra_data = {
                **self.storage.extra_data,
                SERIAL_SNAPSHOT: _snapshot_dump(form.serial_number),
            }
        return super().process_step(form)

    def render_done(self, form: Any, **kwargs: Any) -> Any:
        self._confirming = True
        try:
            return super().render_done(form, **kwargs)
        except SerialTargetError as exc:
            # Raised by done(), before formtools resets the instance: it goes on, back to the
            # choice of the license.
            messages.error(self.request, str(exc))
            return self._choose_target_again()

    def get_form_kwargs(self, step: str | None = None) -> dict[str, Any]:
        if step == "serial":
            return {
                "request": self.request,
                "organization": self.request.organization,
                # Confirming: the serial step is not typed again, and the redemption's locked
                # read decides (serial_redeem refuses a serial spent or voided meanwhile).
                "typed": not self._confirming,
            }
        if step == "registration":
            serial = self._serial()
            return {
                "serial": serial,
                "targets": self._targets(serial),
                "readable_keys": self.readable_keys([t.key for t in self._targets(serial)]),
                "prefill": self.storage.extra_data.get(PREFILL),
            }
        return {}

    def _prefill_registration(self) -> SupportRegistration | None:
        """The registration the contacts start from: that of the license a renewal or upgrade
        applies to when only one fits (or all that fit share one), as Version upgrade does;
        otherwise the organization's latest. Prefilling a license's renewal with another
        site's contacts replaced its registration when they were kept."""
        targets = self._targets(self._serial())
        if targets and len({target.registration_id for target in targets}) == 1:
            return targets[0].registration
        return latest_registration(organization=self.request.organization)

    def get_form_initial(self, step: str) -> dict[str, Any]:
        if step != "registration" or self._binding:
            return {}
        previous = self._prefill_registration()
        if previous is not None:
            initial = {name: getattr(previous, name) for name in RegistrationForm.Meta.fields}
            # Confirmed unchanged, the license is linked to this row instead of a copy of it.
            self.storage.extra_data = {
                **self.storage.extra_data,
                PREFILL: {"id": previous.pk, "data": comparable_registration(initial)},
            }
            return initial
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
            context["target_key"] = self.key_shown(target.key) if target is not None else ""
            serial = context.get("serial")
            if target is not None:
                self.storage.extra_data = {
                    **self.storage.extra_data,
                    SEEN_SEATS: {"license": str(target.pk), "seats": target.quantity},
                }
            if target is not None and serial is not None and serial.kind == "upgrade":
                # Seats an upgrade serial for fewer seats leaves on the license (serial_redeem).
                context["seats_left"] = max(0, target.quantity - serial.quantity)
                context["maintenance_start"], context["maintenance_end"] = (
                    serial_upgrade_maintenance(
                        serial=serial, license=target, today=timezone.localdate()
                    )
                )
            if target is not None and serial is not None and serial.kind == "renewal":
                context["maintenance_start"], context["maintenance_end"] = target.renewal_period(
                    months=serial.maintenance_months, today=timezone.localdate()
                )
        return context

    def _may_see(self, license: License) -> bool:
        """Whether this actor may open `license`'s result page (owned_license_for's rule)."""
        return (
            licenses_visible_to(actor=self.request.user, organization=self.request.organization)
            .filter(pk=license.pk, owner=self.request.organization)
            .exists()
        )

    def render(self, form: Any = None, **kwargs: Any) -> HttpResponse:
        shown = getattr(form, "own_registration_shown", None)
        if shown is not None:
            # The chosen license's contacts replaced the prefilled ones on the page: kept as
            # they are, they are that license's registration, reused (not copied).
            self.storage.extra_data = {**self.storage.extra_data, PREFILL: shown}
        return super().render(form, **kwargs)

    def _reused_registration(self, registration: RegistrationForm) -> int | None:
        """The registration to link the license to when the contacts were kept: the chosen
        license's own if they are still its, else the one the form was prefilled with."""
        target = registration.chosen_target()
        if target is not None and not target.registration.changes(registration.registration_data()):
            return target.registration_id
        return self._unchanged_prefill(registration)

    def _unchanged_prefill(self, registration: RegistrationForm) -> int | None:
        """The registration the form was prefilled with, if the user confirmed it unchanged."""
        prefill = self.storage.extra_data.get(PREFILL) or {}
        if prefill.get("data") == comparable_registration(registration.registration_data()):
            return int(prefill["id"])
        return None

    def render_revalidation_failure(self, failed_step: str, form: Any, **kwargs: Any) -> Any:
        # This instance's own serial was redeemed meanwhile (a double click whose first request
        # finished after this one read the session): its result, not a second attempt. The
        # serial step's revalidation finds it, so the confirmation reads the serial no more
        # than that check and the locked read of the redemption itself.
        if failed_step == "serial" and getattr(form, "already_redeemed", None) is not None:
            return self.finish(form.already_redeemed.pk)
        if failed_step == "registration" and self._confirming:
            # Revalidated against every license the serial applies to (_targets): the page
            # offers again only those whose seats it fits.
            self._confirming = False
            form = self.get_form(
                step=failed_step,
                data=self.storage.get_step_data(failed_step),
                files=self.storage.get_step_files(failed_step),
            )
        return super().render_revalidation_failure(failed_step, form, **kwargs)

    def _seen_seats(self, target_id: str | None) -> int | None:
        """The seats the confirmation page showed license `target_id` with; None if it showed
        none (a session from before they were recorded)."""
        seen = self.storage.extra_data.get(SEEN_SEATS) or {}
        return seen.get("seats") if target_id and seen.get("license") == target_id else None

    def _choose_target_again(self) -> HttpResponse:
        """Back to the registration step, its contacts kept and its license choice cleared:
        the chosen license cannot take the serial as the confirmation page showed it."""
        self._confirming = False  # the page offers only the licenses that fit now
        if not self._targets(self._serial()):
            self.storage.reset()
            return redirect("get-a-key")
        data = self.storage.get_step_data("registration")
        if data is not None:
            data = data.copy()
            data.pop(f"{self.get_form_prefix('registration')}-target_license", None)
            self.storage.set_step_data("registration", data)
        self.storage.current_step = "registration"
        # Bound to what was typed: its contacts are kept, and the cleared choice asks for one.
        return self.render(
            self.get_form(
                step="registration",
                data=self.storage.get_step_data("registration"),
                files=self.storage.get_step_files("registration"),
            )
        )

    def done(self, form_list: Any, form_dict: dict[str, Any], **kwargs: Any) -> HttpResponse:
        serial_form: SerialForm = form_dict["serial"]
        registration: RegistrationForm = form_dict["registration"]
        target_id = registration.cleaned_data.get("target_license")
        try:
            result = serial_redeem(
                code=serial_form.cleaned_data["serial"],
                organization=self.request.organization,
                registration=registration.registration_data(),
                acting_user=self.request.user,
                target_license_id=target_id,
                host_id=registration.cleaned_data.get("host_id", ""),
                registration_reuse_id=self._reused_registration(registration),
                accepted_before=True,
                target_quantity=self._seen_seats(target_id),
            )
        except SerialTargetError:
            raise  # render_done: the license chosen changed, choose again
        except SerialAlreadyRedeemed as exc:
            if self._may_see(exc.license):
                return self.finish(exc.license.pk)
            # Someone in the organization redeemed it meanwhile, and this actor (a partner that
            # may only obtain keys) may not see that license: its result page would be a 404.
            # Say so as the serial step does, with the key's last group only.
            messages.error(
                self.request,
                _("Your organization already redeemed this serial number: it is license %(key)s.")
                % {"key": mask_key(exc.license.key)},
            )
            self.storage.reset()
            return redirect("get-a-key")
        except LicensingError as exc:
            messages.error(self.request, str(exc))
            self.storage.reset()
            return redirect("get-a-key")
        if result.renewed:
            messages.success(self.request, _("Maintenance renewed. A new license file was issued."))
        else:
            messages.success(self.request, _("Your license key is ready."))
        return self.finish(result.license.pk)
