"""The Voucher center: codes (with a preview) → registration and contacts → confirm → licenses.

The state lives in the server-side session behind typed accessors (Oscar's checkout pattern):
the codes, the combine choice and the registration, never the vouchers themselves, which are
re-read on every step. Steps cannot be skipped; only the confirmation writes. The codes step
starts an instance with a token; every later page carries it, and a page of an instance that
has moved on (another tab typed other codes) changes nothing and says so. The token is the id
of the conversion the confirmation records, so submitting it twice (double click, a replayed
POST) lands on the same result page.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from licensing.forms import RegistrationForm
from licensing.models import add_months
from licensing.selectors import latest_registration
from licensing.wizard import STARTED_OVER
from portal.broker import enqueue
from portal.http import PortalRequest, organization_required
from portal.policy import Action

from .forms import ConfirmForm, PreviewForm, VoucherCodesForm, not_checked
from .models import VoucherConversion
from .selectors import CodeCheck, license_groups, vouchers_check
from .services import VoucherError, voucher_conversion_create, voucher_conversion_run
from .tasks import convert_vouchers

logger = logging.getLogger(__name__)

SESSION_KEY = "vouchers:center"
# Up to this many codes convert within the request; more go to a Celery task with a progress
# page, so that no request runs long enough to time out.
INLINE_MAX = 50

STEPS = [
    ("codes", gettext_lazy("Voucher codes")),
    ("registration", gettext_lazy("Registration and contacts")),
    ("confirm", gettext_lazy("Confirm")),
    ("result", gettext_lazy("Licenses")),
]


def steps_context(current: str) -> dict[str, Any]:
    """The progress indicator shared with Get a key (licensing/includes/_wizard_steps.html)."""
    titles = [(index + 1, name, title) for index, (name, title) in enumerate(STEPS)]
    number = next(number for number, name, _title in titles if name == current)
    return {"step_titles": titles, "current_step": current, "current_number": number}


class VoucherCenterState:
    """What the customer has told the Voucher center so far, kept in the session."""

    def __init__(self, request: PortalRequest) -> None:
        self._session = request.session
        self._organization_id = request.organization.pk
        data = self._session.get(SESSION_KEY) or {}
        # Switching organization mid-way starts over: codes are checked for one organization.
        same = data.get("organization") == self._organization_id
        self._data: dict[str, Any] = data if same else {}

    def save(self) -> None:
        self._data["organization"] = self._organization_id
        self._session[SESSION_KEY] = self._data

    def reset(self) -> None:
        self._data = {}
        self._session.pop(SESSION_KEY, None)

    # -- step 1 --------------------------------------------------------------------------

    def set_codes(
        self,
        *,
        entries: list[str],
        unchecked: list[str],
        minutes_left: int,
        duplicates: list[str] | None = None,
    ) -> None:
        self._data.update(
            entries=entries,
            duplicates=list(duplicates or []),
            unchecked=unchecked,
            minutes_left=minutes_left,
            token=str(uuid.uuid4()),
            previewed=False,
        )

    @property
    def entries(self) -> list[str]:
        return list(self._data.get("entries", []))

    @property
    def duplicates(self) -> list[str]:
        """Codes that were entered more than once (each is kept once)."""
        return list(self._data.get("duplicates", []))

    def duplicates_shown(self, checks: list[CodeCheck]) -> list[str]:
        """The codes entered more than once as the preview's table shows them (R2J12-MNQGN-…),
        not as first typed (r2j12mnqgn…): the notice names the rows it speaks of."""
        shown = {check.entry: check.shown_code for check in checks}
        return [shown.get(entry, entry) for entry in self.duplicates]

    @property
    def unchecked(self) -> list[str]:
        return list(self._data.get("unchecked", []))

    @property
    def minutes_left(self) -> int:
        return int(self._data.get("minutes_left", 0))

    @property
    def token(self) -> uuid.UUID | None:
        token = self._data.get("token")
        return uuid.UUID(token) if token else None

    @property
    def combine(self) -> bool:
        return bool(self._data.get("combine", True))

    def set_combine(self, combine: bool) -> None:
        self._data.update(combine=combine, previewed=True)

    @property
    def previewed(self) -> bool:
        return bool(self._data.get("previewed"))

    # -- step 2 --------------------------------------------------------------------------

    @property
    def registration(self) -> dict[str, str] | None:
        return self._data.get("registration")

    def set_registration(self, registration: dict[str, str]) -> None:
        self._data["registration"] = registration

    # -- derived -------------------------------------------------------------------------

    def checks(self, request: PortalRequest) -> list[CodeCheck]:
        """The codes re-checked against the database now; no failed attempt is counted again."""
        unchecked = set(self.unchecked)
        fresh = vouchers_check(
            entries=[e for e in self.entries if e not in unchecked],
            organization=request.organization,
            actor=request.user,
            today=timezone.localdate(),
        )
        by_entry = {check.entry: check for check in fresh}
        return [
            not_checked(entry, self.minutes_left) if entry in unchecked else by_entry[entry]
            for entry in self.entries
            if entry in unchecked or entry in by_entry
        ]


def _registration_initial(request: PortalRequest) -> dict[str, Any]:
    """Prefilled as in Get a key: the organization's last registration, or who is asking."""
    previous = latest_registration(organization=request.organization)
    if previous is not None:
        return {name: getattr(previous, name) for name in RegistrationForm.Meta.fields}
    organization, user = request.organization, request.user
    return {
        "company": organization.name,
        "address": organization.address,
        "country": organization.country,
        "primary_name": user.full_name,
        "primary_email": user.email,
        "technical_name": user.full_name,
        "technical_email": user.email,
    }


def _same_instance(request: PortalRequest, state: VoucherCenterState) -> bool:
    """Whether the posted page belongs to the instance the session holds (its token)."""
    posted = request.POST.get("token", "")
    return bool(posted) and state.token is not None and posted == str(state.token)


def _live_step(state: VoucherCenterState) -> str:
    if not state.entries:
        return "voucher-center"
    if not state.previewed:
        return "voucher-center-preview"
    if state.registration is None:
        return "voucher-center-registration"
    return "voucher-center-confirm"


def _started_over(request: PortalRequest, state: VoucherCenterState) -> HttpResponse:
    # Another tab (or the codes page) started a new instance: nothing of this page is applied
    # to it, and it is kept as it is for the tab that owns it.
    messages.warning(request, STARTED_OVER)
    return redirect(_live_step(state))


def _summary(checks: list[CodeCheck], combine: bool) -> dict[str, Any]:
    usable = [check for check in checks if check.usable]
    today = timezone.localdate()
    groups = [
        {
            "product": group.version.product.name,
            "version": group.version.version,
            "quantity": group.quantity,
            "count": len(group.checks),
            "maintenance_end": add_months(today, group.maintenance_months),
        }
        for group in license_groups(usable, combine=combine)
    ]
    return {
        "checks": checks,
        "usable_count": len(usable),
        "refused_count": len(checks) - len(usable),
        "groups": groups,
        "combined_count": len(license_groups(usable, combine=True)),
        "combine": combine,
        "maintenance_start": today,
    }


# ---------------------------------------------------------------------------------------------
# Steps


@organization_required(action=Action.OBTAIN_KEYS)
def voucher_center(request: PortalRequest) -> HttpResponse:
    """Step 1: the codes. Checking them here is what counts failures; later steps re-read."""
    state = VoucherCenterState(request)
    if request.method == "POST":
        form = VoucherCodesForm(
            request.POST, request.FILES, request=request, organization=request.organization
        )
        if form.is_valid():
            state.set_codes(
                entries=form.entries,
                unchecked=form.unchecked,
                minutes_left=form.minutes_left,
                duplicates=form.duplicates,
            )
            state.save()
            return redirect("voucher-center-preview")
    else:
        form = VoucherCodesForm(
            initial={"codes": "\n".join(state.entries)},
            request=request,
            organization=request.organization,
        )
    return render(request, "vouchers/codes.html", {"form": form, **steps_context("codes")})


@organization_required(action=Action.OBTAIN_KEYS)
def voucher_center_preview(request: PortalRequest) -> HttpResponse:
    """Step 1, continued: every code with its product and quantity, or why it cannot be used."""
    state = VoucherCenterState(request)
    if request.method == "POST" and not _same_instance(request, state):
        return _started_over(request, state)
    if not state.entries:
        return redirect("voucher-center")
    checks = state.checks(request)
    if request.method == "POST":
        form = PreviewForm(request.POST)
        if form.is_valid():
            if not any(check.usable for check in checks):
                messages.error(request, _("None of these codes can be converted."))
                return redirect("voucher-center-preview")
            state.set_combine(form.cleaned_data["combine"])
            state.save()
            return redirect("voucher-center-registration")
    else:
        form = PreviewForm(initial={"combine": state.combine})
    return render(
        request,
        "vouchers/preview.html",
        {
            "form": form,
            "token": state.token,
            "duplicates": state.duplicates_shown(checks),
            **_summary(checks, state.combine),
            **steps_context("codes"),
        },
    )


@organization_required(action=Action.OBTAIN_KEYS)
def voucher_center_registration(request: PortalRequest) -> HttpResponse:
    """Step 2: product registration and support contacts, once for every license."""
    state = VoucherCenterState(request)
    if request.method == "POST" and not _same_instance(request, state):
        return _started_over(request, state)
    if not state.entries:
        return redirect("voucher-center")
    if not state.previewed:
        return redirect("voucher-center-preview")
    form = RegistrationForm(
        request.POST or None,
        serial=None,
        initial=state.registration or _registration_initial(request),
    )
    if request.method == "POST" and form.is_valid():
        state.set_registration(form.registration_data())
        state.save()
        return redirect("voucher-center-confirm")
    return render(
        request,
        "vouchers/registration.html",
        {"form": form, "token": state.token, **steps_context("registration")},
    )


@organization_required(action=Action.OBTAIN_KEYS)
def voucher_center_confirm(request: PortalRequest) -> HttpResponse:
    """Step 3: what will be issued, then the one write."""
    state = VoucherCenterState(request)
    if request.method == "POST":
        return _confirm(request, state)
    if not state.entries:
        return redirect("voucher-center")
    if not state.previewed:
        return redirect("voucher-center-preview")
    if state.registration is None:
        return redirect("voucher-center-registration")
    summary = _summary(state.checks(request), state.combine)
    if not summary["usable_count"]:
        messages.error(request, _("None of these codes can be converted any more."))
        return redirect("voucher-center-preview")
    return render(
        request,
        "vouchers/confirm.html",
        {
            "form": ConfirmForm(initial={"token": state.token}),
            "registration": state.registration,
            "inline": len(state.entries) <= INLINE_MAX,
            **summary,
            **steps_context("confirm"),
        },
    )


def _confirm(request: PortalRequest, state: VoucherCenterState) -> HttpResponse:
    form = ConfirmForm(request.POST)
    token = form.cleaned_data["token"] if form.is_valid() else None
    if token is not None:
        existing = VoucherConversion.objects.filter(
            pk=token, organization=request.organization
        ).first()
        if existing is not None:  # submitted before: show what that submission did
            if state.token == token:
                state.reset()
            return redirect("voucher-conversion", pk=existing.pk)
    if token is None or token != state.token or not state.previewed or state.registration is None:
        return _started_over(request, state)

    unchecked = set(state.unchecked)
    try:
        # The service checks the codes again, in the transaction that converts them.
        conversion, created = voucher_conversion_create(
            conversion_id=token,
            codes=[entry for entry in state.entries if entry not in unchecked],
            not_checked=[
                not_checked(entry, state.minutes_left).refusal() for entry in state.unchecked
            ],
            organization=request.organization,
            registration=state.registration,
            acting_user=request.user,
            combine=state.combine,
            language=translation.get_language() or "",
        )
    except VoucherError as exc:
        messages.error(request, str(exc))
        return redirect("voucher-center")
    state.reset()
    if created:
        _start(conversion)
    return redirect("voucher-conversion", pk=conversion.pk)


def _start(conversion: VoucherConversion) -> None:
    conversion_id = str(conversion.pk)
    if conversion.total > INLINE_MAX:
        transaction.on_commit(lambda: enqueue(convert_vouchers, conversion_id), robust=True)
        return
    try:
        voucher_conversion_run(conversion_id=conversion_id)
    except Exception:
        # What was converted is committed; the task finishes (or reports) the rest.
        logger.exception("Voucher conversion %s failed in the request; queued", conversion_id)
        transaction.on_commit(lambda: enqueue(convert_vouchers, conversion_id), robust=True)
