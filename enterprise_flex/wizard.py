"""The drawdown wizard: product (line) → quantity and site → confirm → license key.

As Get a key: the state lives in the server-side session (django-formtools), every step
re-reads the contract, line and site from the database, only the last step writes, and a token
kept with the wizard's state makes a repeated confirmation return the first drawdown.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from licensing.wizard import PortalWizard
from portal.http import PortalRequest, organization_required
from portal.policy import Action, require

from .forms import ConfirmForm, LineForm, QuantitySiteForm
from .models import EFLine, EFSite
from .selectors import ContractAccess, contract_for, contract_lines, contract_sites
from .services import DrawdownRefused, DrawdownRequest, drawdown_create, period_problem

STEP_TITLES = {
    "line": gettext_lazy("Product"),
    "quantity": gettext_lazy("Quantity and site"),
    "confirm": gettext_lazy("Confirm"),
}


@method_decorator(organization_required(action=Action.ENTERPRISE_FLEX), name="dispatch")
class DrawdownWizard(PortalWizard):
    form_list = [("line", LineForm), ("quantity", QuantitySiteForm), ("confirm", ConfirmForm)]
    template_name = "enterprise_flex/drawdown_wizard.html"
    request: PortalRequest

    @classmethod
    def get_prefix(cls, request: HttpRequest, *args: Any, **kwargs: Any) -> str:
        # One wizard state per contract: two tabs drawing down from two contracts don't mix.
        return f"ef_drawdown_{kwargs.get('number', '')}"

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        require(request, Action.OBTAIN_KEYS)
        self.reach: ContractAccess = contract_for(
            actor=request.user, access=request.access, number=kwargs["number"]
        )
        self.reach.require("draw_down")
        self.restart_url = reverse("ef-drawdown", kwargs={"number": kwargs["number"]})
        return super().dispatch(request, *args, **kwargs)

    # -- state, re-read on every request ---------------------------------------------------

    def _lines(self) -> list[EFLine]:
        cached: list[EFLine] | None = getattr(self, "_lines_cache", None)
        if cached is None:
            cached = self._lines_cache = contract_lines(self.reach)
        return cached

    def _sites(self) -> list[EFSite]:
        cached: list[EFSite] | None = getattr(self, "_sites_cache", None)
        if cached is None:
            cached = self._sites_cache = contract_sites(self.reach, active_only=True)
        return cached

    def _raw(self, step: str, field: str) -> str:
        data = self.storage.get_step_data(step)
        return (data or {}).get(f"{self.get_form_prefix(step)}-{field}", "")

    def _line(self) -> EFLine | None:
        line_id = self._raw("line", "line")
        return next((line for line in self._lines() if str(line.pk) == line_id), None)

    def _period_refusal(self) -> HttpResponse | None:
        problem = period_problem(self.reach.contract, today=timezone.localdate())
        if problem is None:
            return None
        messages.error(self.request, problem)
        return redirect("ef-contract", number=self.reach.contract.number)

    # -- formtools hooks --------------------------------------------------------------------

    def get(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        refusal = self._period_refusal()
        if refusal is not None:
            return refusal
        # The instance in progress where it stands (PortalWizard.resume); else a fresh one,
        # which a product's link starts at step 2.
        resumed = self.resume()
        if resumed is not None:
            return resumed
        self.start_instance()
        line = request.GET.get("line", "")
        if line.isdigit() and any(str(x.pk) == line for x in self._lines()):
            prefix = self.get_form_prefix("line")
            self.storage.set_step_data("line", {f"{prefix}-line": [line]})
            self.storage.current_step = "quantity"
        return self.render(self.get_form())

    def link_matches(self) -> bool:
        # A product's link for another product than the one in progress starts over with it.
        line = self.request.GET.get("line", "")
        return not line or line == self._raw("line", "line")

    def get_form_kwargs(self, step: str | None = None) -> dict[str, Any]:
        if step == "line":
            return {"lines": self._lines()}
        if step == "quantity":
            return {"line": self._line(), "sites": self._sites()}
        return {}

    def get_context_data(self, form: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(form=form, **kwargs)
        context["step_titles"] = [
            (index + 1, name, STEP_TITLES[name]) for index, name in enumerate(self.steps.all)
        ]
        context["step_titles"].append((len(self.steps.all) + 1, "result", _("License key")))
        context["reach"] = self.reach
        context["contract"] = self.reach.contract
        context["line"] = self._line()
        if self.steps.current == "confirm":
            data = self.get_cleaned_data_for_step("quantity") or {}
            line = context["line"]
            quantity = data.get("quantity") or 0
            context["quantity"] = quantity
            context["site"] = data.get("site")
            context["host_id"] = data.get("host_id", "")
            if line is not None:
                context["overage"] = max(
                    0,
                    line.drawn_quantity
                    + quantity
                    - max(line.drawn_quantity, line.committed_quantity),
                )
        return context

    def result_location(self, result_id: object) -> str:
        return reverse(
            "ef-drawdown-result", kwargs={"number": self.reach.contract.number, "pk": result_id}
        )

    def done(self, form_list: Any, form_dict: dict[str, Any], **kwargs: Any) -> HttpResponse:
        number = self.reach.contract.number
        quantity_form: QuantitySiteForm = form_dict["quantity"]
        access = self.request.access
        try:
            drawdown = drawdown_create(
                contract=self.reach.contract,
                request=DrawdownRequest(
                    line_id=form_dict["line"].cleaned_data["line"].pk,
                    site_id=quantity_form.cleaned_data["site"].pk,
                    quantity=quantity_form.cleaned_data["quantity"],
                    host_id=quantity_form.cleaned_data.get("host_id", ""),
                ),
                actor=self.request.user,
                token=self.instance,
                partner=access.partner if access.is_delegated else None,
            )
        except DrawdownRefused as exc:
            messages.error(self.request, str(exc))
            return redirect("ef-drawdown", number=number)
        messages.success(self.request, _("Your license key is ready."))
        return self.finish(drawdown.pk)
