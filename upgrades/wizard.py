"""The version upgrade wizard: notification ID → product → quantity → support registration →
confirm → new license key.

State lives in the server-side session (django-formtools); every step re-reads the
notification and line from the database, only the last step writes, and the wizard instance's
token (PortalWizard), given whatever the first request was, makes a repeated or concurrent
confirmation return the first result; a confirmation without it is refused.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from licensing.codes import CodeFormatError, canonical_short_code
from licensing.services import REGISTRATION_FIELDS, LicensingError
from licensing.wizard import PortalWizard
from portal.http import PortalRequest, organization_required
from portal.policy import Action
from portal.ratelimit import CodeGuard, code_limit_message

from .forms import (
    ConfirmForm,
    LineForm,
    NotificationIdForm,
    QuantityForm,
    RegistrationForm,
    closed_message,
    elsewhere_message,
)
from .models import UpgradeLine, UpgradeNotification
from .selectors import notification_lookup, open_lines, open_notification
from .services import line_for, upgrade_redeem


def _same_code(typed: str, held: str) -> bool:
    """Whether two notification IDs are the same one, however each was written."""
    try:
        return bool(held) and canonical_short_code(typed) == canonical_short_code(held)
    except CodeFormatError:
        return False


# The wizard's extra data: the license's quantity shown on the quantity step, and for which line.
SEEN_SEATS = "seen_seats"

STEP_TITLES = {
    "notification": gettext_lazy("Notification ID"),
    "line": gettext_lazy("Product"),
    "quantity": gettext_lazy("Quantity"),
    "registration": gettext_lazy("Support registration"),
    "confirm": gettext_lazy("Confirm"),
}


@method_decorator(organization_required(action=Action.OBTAIN_KEYS), name="dispatch")
class UpgradeWizard(PortalWizard):
    form_list = [
        ("notification", NotificationIdForm),
        ("line", LineForm),
        ("quantity", QuantityForm),
        ("registration", RegistrationForm),
        ("confirm", ConfirmForm),
    ]
    template_name = "upgrades/wizard.html"
    restart_url = "upgrade"
    request: PortalRequest
    _confirming = False

    # -- state, re-read on every request ---------------------------------------------------

    def _raw(self, step: str, field: str) -> str:
        data = self.storage.get_step_data(step)
        return (data or {}).get(f"{self.get_form_prefix(step)}-{field}", "")

    def _notification(self) -> UpgradeNotification | None:
        code = self._raw("notification", "notification_id")
        # Memoised per request on the code it was read for: steps ask several times, and the
        # code changes within a request only when step 1 is submitted.
        cached = getattr(self, "_notification_cache", None)
        if cached is None or cached[0] != code:
            found = (
                open_notification(code=code, organization=self.request.organization)
                if code
                else None
            )
            cached = self._notification_cache = (code, found)
        return cached[1]

    def _line(self) -> UpgradeLine | None:
        notification = self._notification()
        line_id = self._raw("line", "line")
        if notification is None or not line_id.isdigit():
            return None
        key = (notification.pk, line_id)
        cached = getattr(self, "_line_cache", None)
        if cached is None or cached[0] != key:
            line = line_for(line_id=line_id, organization=self.request.organization)
            if line is not None and line.notification_id != notification.pk:
                line = None
            cached = self._line_cache = (key, line)
        return cached[1]

    # -- formtools hooks --------------------------------------------------------------------

    def process_step(self, form: Any) -> Any:
        # Back to another notification or license: the later steps are asked again from it,
        # never the first one's answers carried over (confirming would have written the first
        # license's registration over this one's).
        later: tuple[str, ...] = ()
        if isinstance(form, NotificationIdForm):
            chosen, before = form.cleaned_data["notification_id"], self._notification_code()
            later = ("line", "quantity", "registration")
        elif isinstance(form, LineForm):
            chosen, before = str(form.cleaned_data["line"]), self._raw("line", "line")
            later = ("quantity", "registration")
        if later and before and chosen != before:
            step_data = self.storage.data[self.storage.step_data_key]
            for step in later:
                step_data.pop(step, None)
        return super().process_step(form)

    def _notification_code(self) -> str:
        notification = self._notification()
        return notification.code if notification is not None else ""

    def link_matches(self) -> bool:
        # A link from the notice email or the pending list for the notification (and line) the
        # instance in progress holds goes on with it (the language switch comes back to the same
        # link); a link for another one starts over with that one.
        code = self.request.GET.get("notification", "")
        if not code:
            return True
        line = self.request.GET.get("line", "")
        held_line = self._raw("line", "line") or str(self.storage.extra_data.get("preselect", ""))
        return _same_code(code, self._raw("notification", "notification_id")) and (
            not line.isdigit() or line == held_line
        )

    def get(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        # The instance in progress where it stands (PortalWizard.resume); else a fresh one,
        # which a link from the notice email or the pending list starts at step 2.
        resumed = self.resume()
        if resumed is not None:
            return resumed
        self.start_instance()
        code = request.GET.get("notification", "")
        guard = CodeGuard(
            request, organization=self.request.organization, action="upgrade.rate_limited"
        )
        budget = guard.budget() if code else None
        if budget is not None and budget.exhausted:
            # The link is a typed code like any other: a used-up budget refuses it unread.
            messages.error(request, code_limit_message(budget.minutes_left))
        elif code:
            found = notification_lookup(
                code=code, actor=request.user, organization=self.request.organization
            )
            notification = found.notification
            if found.elsewhere is not None:
                # Another organization's the user can act for: a genuine ID, not a guess.
                messages.error(
                    request,
                    elsewhere_message(access=found.elsewhere, request=self.request),
                )
            elif found.closed is not None:
                # Genuine, expired or used up: say so, and no failed attempt.
                messages.error(
                    request, closed_message(notification=found.closed, request=self.request)
                )
            elif notification is None:
                guard.failed()
                messages.error(
                    request,
                    _(
                        "This upgrade notification is not open for your "
                        "organization. Enter its ID below, or see your "
                        "pending upgrades."
                    ),
                )
            else:
                prefix = self.get_form_prefix("notification")
                self.storage.set_step_data(
                    "notification", {f"{prefix}-notification_id": [notification.code]}
                )
                self.storage.current_step = "line"
                line = request.GET.get("line", "")
                if line.isdigit():
                    self.storage.extra_data = {**self.storage.extra_data, "preselect": line}
        return self.render(self.get_form())

    def render_done(self, form: Any, **kwargs: Any) -> Any:
        # formtools checks every step again before done(): the notification ID is not typed
        # again there (NotificationIdForm's typed=False).
        self._confirming = True
        return super().render_done(form, **kwargs)

    def get_form_kwargs(self, step: str | None = None) -> dict[str, Any]:
        if step == "notification":
            return {
                "request": self.request,
                "organization": self.request.organization,
                "typed": not self._confirming,
            }
        if step == "line":
            notification = self._notification()
            return {"lines": list(open_lines(notification)) if notification else []}
        if step == "quantity":
            line = self._line()
            return {"remaining": line.upgradable_quantity if line else 0}
        return {}

    def get_form_initial(self, step: str) -> dict[str, Any]:
        if step == "line":
            preselect = self.storage.extra_data.get("preselect")
            return {"line": preselect} if preselect else {}
        if step == "registration":
            line = self._line()
            if line is not None:
                registration = line.source_license.registration
                return {name: getattr(registration, name) for name in REGISTRATION_FIELDS}
        return {}

    def get_context_data(self, form: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(form=form, **kwargs)
        context["step_titles"] = [
            (index + 1, name, STEP_TITLES[name]) for index, name in enumerate(self.steps.all)
        ]
        context["step_titles"].append((len(self.steps.all) + 1, "result", _("License key")))
        context["notification"] = self._notification()
        context["line"] = self._line()
        # Every line used up while the wizard was open: nothing to choose, Back only.
        context["nothing_left"] = self.steps.current == "line" and not form.fields["line"].choices
        line = context["line"]
        # The license's key as this person may see it, on every step that names it (the
        # quantity step as well as the confirmation).
        if line is not None:
            key = line.source_license.key
            context["source_key"] = self.key_shown(key)
            if self.steps.current == "quantity":
                # What the person chooses from: confirming decides whether the license still
                # holds it (upgrade_redeem's license_quantity).
                self.storage.extra_data = {
                    **self.storage.extra_data,
                    SEEN_SEATS: {"line": line.pk, "seats": line.source_license.quantity},
                }
        if self.steps.current == "confirm":
            context["quantity"] = (self.get_cleaned_data_for_step("quantity") or {}).get("quantity")
            context["registration"] = self.get_cleaned_data_for_step("registration") or {}
        return context

    def _seen_seats(self, line_id: object) -> int | None:
        """The license's quantity the quantity step showed for this line; None if it showed
        none (a session from before it was recorded)."""
        seen = self.storage.extra_data.get(SEEN_SEATS) or {}
        return seen.get("seats") if str(seen.get("line")) == str(line_id) else None

    def done(self, form_list: Any, form_dict: dict[str, Any], **kwargs: Any) -> HttpResponse:
        registration = form_dict["registration"]
        token = self.instance
        if not token:  # PortalWizard.post lets no confirm through without one; never invent it
            return self.started_over()
        try:
            license = upgrade_redeem(
                line_id=form_dict["line"].cleaned_data["line"],
                quantity=form_dict["quantity"].cleaned_data["quantity"],
                organization=self.request.organization,
                registration={
                    name: registration.cleaned_data[name] for name in REGISTRATION_FIELDS
                },
                actor=self.request.user,
                token=token,
                license_quantity=self._seen_seats(form_dict["line"].cleaned_data["line"]),
            )
        except LicensingError as exc:
            messages.error(self.request, str(exc))
            return redirect("upgrade")
        messages.success(
            self.request,
            _("Upgrade complete: here is the license key for version %(version)s.")
            % {"version": license.version.version},
        )
        return self.finish(license.pk)
