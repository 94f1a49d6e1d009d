"""Enterprise Flexible pages. Every view finds the contract through selectors.contract_for (a
contract the actor is not on is a 404) and asks the actor's level before acting (a 403 with a
translated reason); partner users reach them only with the obtain-keys scope.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from licensing.services import license_email_recipients
from licensing.views.licenses import license_csv_response, license_list_render
from portal.formats import short_date
from portal.http import PortalRequest, confirmation, organization_required
from portal.policy import Action, require

from .charts import bar_chart
from .forms import (
    AddUserForm,
    DeploymentReportForm,
    InviteForm,
    LevelForm,
    SiteEditForm,
    SiteForm,
)
from .models import EFContract, EFContractUser, EFInvitation
from .selectors import (
    ContractAccess,
    TrueUp,
    addable_members,
    catalog_licenses,
    contract_for,
    contract_lines,
    contract_sites,
    contract_user_for,
    contract_users,
    contracts_for,
    deployment_report_view,
    deployment_reports,
    drawdown_for,
    drawdowns_visible,
    invitation_for,
    open_invitations,
    site_for,
    true_up,
)
from .services import (
    EFError,
    contract_user_remove,
    contract_user_set,
    deployment_report_save,
    deployment_report_submit,
    invitation_accept,
    invitation_create,
    invitation_revoke,
    period_problem,
    site_create,
    site_update,
    submit_window_opens,
)

PAGE_SIZE = 50


def _reach(request: PortalRequest, number: str, action: str = "view_contract") -> ContractAccess:
    """The contract `number` as the request's actor reaches it, allowed to do `action`."""
    require(request, Action.OBTAIN_KEYS)
    reach = contract_for(actor=request.user, access=request.access, number=number)
    reach.require(action)
    return reach


def _phase(contract: EFContract) -> dict[str, str]:
    phase = contract.phase(today=timezone.localdate())
    return {"phase": phase, "phase_label": str(EFContract.Phase(phase).label)}


def _partner(request: PortalRequest) -> Any:
    return request.access.partner if request.access.is_delegated else None


@organization_required(action=Action.ENTERPRISE_FLEX)
def contract_list(request: PortalRequest) -> HttpResponse:
    require(request, Action.OBTAIN_KEYS)
    rows = [
        {"reach": reach, **_phase(reach.contract)}
        for reach in contracts_for(actor=request.user, access=request.access)
    ]
    return render(request, "enterprise_flex/contracts.html", {"rows": rows})


def _summary_chart(lines: list[Any]) -> str:
    return bar_chart(
        title=_("Committed and drawn down per product"),
        labels=[f"{line.version.product.name} {line.version.version}" for line in lines],
        series=[
            (_("Committed"), [line.committed_quantity for line in lines]),
            (_("Drawn down"), [line.drawn_quantity for line in lines]),
        ],
    )


@organization_required(action=Action.ENTERPRISE_FLEX)
def contract_detail(request: PortalRequest, number: str) -> HttpResponse:
    reach = _reach(request, number)
    contract = reach.contract
    today = timezone.localdate()
    lines = contract_lines(reach)
    reports = deployment_reports(reach)
    years = [
        {
            "year": contract_year,
            "report": reports.get(contract_year.number),
            "started": contract_year.start <= today,
            "current": contract_year.start <= today <= contract_year.end,
        }
        for contract_year in contract.years()
    ]
    return render(
        request,
        "enterprise_flex/contract_detail.html",
        {
            "reach": reach,
            "contract": contract,
            **_phase(contract),
            "drawdown_refusal": period_problem(contract, today=today),
            "lines": lines,
            "chart": _summary_chart(lines) if lines else "",
            "totals": {
                "committed": sum(line.committed_quantity for line in lines),
                "drawn": sum(line.drawn_quantity for line in lines),
                "remaining": sum(line.remaining_quantity for line in lines),
                "overage": sum(line.overage_quantity for line in lines),
            },
            "sites": contract_sites(reach),
            "users": contract_users(reach),
            "years": years,
            "recent": list(drawdowns_visible(reach)[:5]),
        },
    )


@organization_required(action=Action.ENTERPRISE_FLEX)
def drawdown_result(request: PortalRequest, number: str, pk: int) -> HttpResponse:
    reach = _reach(request, number, "view_own_drawdowns")
    drawdown = drawdown_for(reach, pk)
    license = drawdown.license
    return render(
        request,
        "enterprise_flex/drawdown_result.html",
        {
            "reach": reach,
            "contract": reach.contract,
            "drawdown": drawdown,
            "license": license,
            "recipients": license_email_recipients(license, license.issued_by),
        },
    )


@organization_required(action=Action.ENTERPRISE_FLEX)
def drawdown_list(request: PortalRequest, number: str) -> HttpResponse:
    reach = _reach(request, number, "view_own_drawdowns")
    page = Paginator(drawdowns_visible(reach), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "enterprise_flex/drawdowns.html",
        {"reach": reach, "contract": reach.contract, "page": page},
    )


@organization_required(action=Action.ENTERPRISE_FLEX)
def contract_licenses(request: PortalRequest, number: str) -> HttpResponse:
    reach = _reach(request, number, "view_own_drawdowns")
    return license_list_render(
        request,
        base=catalog_licenses(reach),
        template="enterprise_flex/licenses.html",
        context={"reach": reach, "contract": reach.contract},
    )


@organization_required(action=Action.ENTERPRISE_FLEX)
def contract_licenses_export(request: PortalRequest, number: str) -> HttpResponseBase:
    reach = _reach(request, number, "view_own_drawdowns")
    return license_csv_response(
        request, base=catalog_licenses(reach), name=f"{reach.contract.number.lower()}-licenses"
    )


# ---------------------------------------------------------------------------------------------
# Sites


@organization_required(action=Action.ENTERPRISE_FLEX)
def site_create_view(request: PortalRequest, number: str) -> HttpResponse:
    reach = _reach(request, number, "manage_sites")
    form = SiteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            site = site_create(
                contract=reach.contract,
                values=form.cleaned_data,
                actor=request.user,
                partner=_partner(request),
            )
        except EFError as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, _("Site %(name)s added.") % {"name": site.name})
            return redirect("ef-contract", number=number)
    return render(
        request,
        "enterprise_flex/site_form.html",
        {"reach": reach, "contract": reach.contract, "form": form, "site": None},
        status=400 if form.errors else 200,
    )


@organization_required(action=Action.ENTERPRISE_FLEX)
def site_edit_view(request: PortalRequest, number: str, pk: int) -> HttpResponse:
    reach = _reach(request, number, "manage_sites")
    site = site_for(reach, pk)
    form = SiteEditForm(request.POST or None, instance=site)
    if request.method == "POST" and form.is_valid():
        # The service writes; the form only validated (its instance is not saved here).
        site.refresh_from_db()
        try:
            site_update(
                site=site,
                values=form.cleaned_data,
                active=form.cleaned_data["active"],
                actor=request.user,
                partner=_partner(request),
            )
        except EFError as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, _("Site saved."))
            return redirect("ef-contract", number=number)
    return render(
        request,
        "enterprise_flex/site_form.html",
        {"reach": reach, "contract": reach.contract, "form": form, "site": site},
        status=400 if form.errors else 200,
    )


# ---------------------------------------------------------------------------------------------
# Users and invitations (super users)


@organization_required(action=Action.ENTERPRISE_FLEX)
def users_view(request: PortalRequest, number: str) -> HttpResponse:
    reach = _reach(request, number, "manage_users")
    members = addable_members(reach)
    add_form = AddUserForm(
        request.POST if "add" in request.POST else None, members=members, prefix="add"
    )
    invite_form = InviteForm(request.POST if "invite" in request.POST else None, prefix="invite")
    if request.method == "POST":
        try:
            if "add" in request.POST and add_form.is_valid():
                member = add_form.cleaned_data["member"]
                contract_user_set(
                    contract=reach.contract,
                    user=member.user,
                    level=add_form.cleaned_data["level"],
                    actor=request.user,
                )
                messages.success(
                    request, _("%(email)s was added to the contract.") % {"email": member.user}
                )
                return redirect("ef-users", number=number)
            if "invite" in request.POST and invite_form.is_valid():
                invitation = invitation_create(
                    contract=reach.contract,
                    email=invite_form.cleaned_data["email"],
                    level=invite_form.cleaned_data["level"],
                    actor=request.user,
                )
                messages.success(
                    request, _("Invitation sent to %(email)s.") % {"email": invitation.email}
                )
                return redirect("ef-users", number=number)
        except EFError as exc:
            messages.error(request, str(exc))
    return render(
        request,
        "enterprise_flex/users.html",
        {
            "reach": reach,
            "contract": reach.contract,
            "users": contract_users(reach),
            "invitations": open_invitations(reach),
            "add_form": add_form,
            "invite_form": invite_form,
            "level_form": LevelForm(),
            "has_addable": members.exists(),
        },
        status=400 if add_form.errors or invite_form.errors else 200,
    )


@require_POST
@organization_required(action=Action.ENTERPRISE_FLEX)
def user_update_view(request: PortalRequest, number: str, pk: int) -> HttpResponse:
    reach = _reach(request, number, "manage_users")
    try:
        contract_user = contract_user_for(reach, pk)
    except Http404:
        if request.POST.get("confirm") != "1":
            raise
        # A confirmation posted again (the back button, an old tab) after the user was taken
        # off: said, not a 404. It names no one, so it tells nothing about other contracts.
        messages.info(request, _("This person is no longer a user of this contract."))
        return redirect("ef-users", number=number)
    form = LevelForm(request.POST)
    if (
        "remove" in request.POST
        and not _last_super_user(contract_user)
        and (asked := _removal_confirmation(request, contract_user, number))
    ):
        return asked
    try:
        if "remove" in request.POST:
            contract_user_remove(contract_user=contract_user, actor=request.user)
            messages.success(
                request,
                _("%(email)s no longer has access to this contract.")
                % {"email": contract_user.user.email},
            )
        elif form.is_valid():
            contract_user_set(
                contract=reach.contract,
                user=contract_user.user,
                level=form.cleaned_data["level"],
                actor=request.user,
            )
            messages.success(request, _("Level updated."))
        else:
            messages.error(
                request, _("Choose a level: contract user, configuration user or super user.")
            )
    except EFError as exc:
        messages.error(request, str(exc))
    return redirect("ef-users", number=number)


def _last_super_user(contract_user: EFContractUser) -> bool:
    """Whether taking `contract_user` off would leave the contract without a super user: the
    service refuses it, so nothing is asked first (the refusal says why)."""
    level = EFContractUser.Level.SUPER
    return (
        contract_user.level == level
        and not EFContractUser.objects.filter(contract_id=contract_user.contract_id, level=level)
        .exclude(pk=contract_user.pk)
        .exists()
    )


def _removal_confirmation(
    request: PortalRequest, contract_user: EFContractUser, number: str
) -> HttpResponse | None:
    """Before taking a user off a contract: taking oneself off ends one's access, so it says so."""
    values = {"email": contract_user.user.email, "number": number}
    if contract_user.user_id == request.user.pk:
        consequence = _(
            "This is your own account: you lose access to contract %(number)s at once, and only "
            "another super user can add you back."
        )
    else:
        consequence = _(
            "%(email)s loses access to contract %(number)s at once: no more drawdowns or reports. "
            "The licenses they drew down stay your organization's. To give access back, add them "
            "again."
        )
    return confirmation(
        request,
        title=_("Remove %(email)s from contract %(number)s?") % values,
        consequences=[consequence % values],
        action=_("Remove"),
        cancel_url=reverse("ef-users", kwargs={"number": number}),
    )


@require_POST
@organization_required(action=Action.ENTERPRISE_FLEX)
def invitation_revoke_view(request: PortalRequest, number: str, pk: int) -> HttpResponse:
    reach = _reach(request, number, "manage_users")
    invitation = invitation_for(reach, pk)
    # One accepted, withdrawn or expired meanwhile is not asked about: the service says what it is.
    if invitation.is_open(now=timezone.now()) and (
        asked := confirmation(
            request,
            title=_("Withdraw the invitation to %(email)s?") % {"email": invitation.email},
            consequences=[
                _(
                    "The link in the invitation email stops working. To invite them again, send "
                    "a new invitation."
                )
            ],
            action=_("Withdraw the invitation"),
            cancel_url=reverse("ef-users", kwargs={"number": number}),
        )
    ):
        return asked
    try:
        invitation_revoke(invitation=invitation, actor=request.user)
    except EFError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Invitation withdrawn."))
    return redirect("ef-users", number=number)


def invitation_landing(request: HttpRequest, token: str) -> HttpResponse:
    """An invitation link from the email. The invitee may have no account or organization yet,
    so this page needs neither: logged out, it sends them to log in or sign up and back."""
    invitation = (
        EFInvitation.objects.select_related("contract__organization", "invited_by")
        .filter(token=token)
        .first()
    )
    if invitation is None or not invitation.is_open(now=timezone.now()):
        return render(request, "enterprise_flex/invitation_invalid.html", status=404)
    if not request.user.is_authenticated:
        if request.method == "POST":
            return redirect_to_login(request.get_full_path())
        return render(request, "enterprise_flex/invitation.html", {"invitation": invitation})
    if request.method != "POST":
        return render(request, "enterprise_flex/invitation.html", {"invitation": invitation})
    try:
        contract_user = invitation_accept(invitation=invitation, user=request.user)  # type: ignore[arg-type]
    except EFError as exc:
        messages.error(request, str(exc))
        return render(
            request, "enterprise_flex/invitation.html", {"invitation": invitation}, status=400
        )
    from portal.selectors import SESSION_ORGANIZATION_KEY

    # Work in the contract's organization from now on: that is where the contract lives.
    request.session[SESSION_ORGANIZATION_KEY] = invitation.contract.organization_id
    messages.success(
        request,
        _("You are now a %(level)s of Enterprise Flexible contract %(number)s.")
        % {
            "level": contract_user.get_level_display().lower(),
            "number": invitation.contract.number,
        },
    )
    return redirect("ef-contract", number=invitation.contract.number)


# ---------------------------------------------------------------------------------------------
# Deployment reports and true-up


@organization_required(action=Action.ENTERPRISE_FLEX)
def report_view(request: PortalRequest, number: str, year: int) -> HttpResponse:
    reach = _reach(request, number, "declare_deployment")
    view = deployment_report_view(reach, year)
    today = timezone.localdate()
    locked = view.report is not None and view.report.is_submitted
    form = DeploymentReportForm(
        request.POST if request.method == "POST" and not locked else None,
        rows=view.rows,
        lines=view.lines,
        sites=[s for s in view.sites if s.active],
    )
    submitting = "submit" in request.POST
    if request.method == "POST":
        if locked:
            messages.error(
                request,
                _("The report for year %(year)s was submitted and can no longer change.")
                % {"year": year},
            )
            return redirect("ef-report", number=number, year=year)
        if submitting:
            reach.require("submit_report")
        if form.is_valid():
            try:
                if submitting:
                    deployment_report_submit(
                        contract=reach.contract,
                        year=year,
                        entries=form.entries(),
                        actor=request.user,
                    )
                    messages.success(
                        request,
                        _("The report for year %(year)s is submitted.") % {"year": year},
                    )
                else:
                    deployment_report_save(
                        contract=reach.contract,
                        year=year,
                        entries=form.entries(),
                        actor=request.user,
                        partner=_partner(request),
                    )
                    messages.success(request, _("Draft saved."))
            except EFError as exc:
                messages.error(request, str(exc))
            else:
                return redirect("ef-report", number=number, year=year)
    opens = submit_window_opens(reach.contract, year)
    return render(
        request,
        "enterprise_flex/report.html",
        {
            "reach": reach,
            "contract": reach.contract,
            "view": view,
            "report": view.report,
            "locked": locked,
            "form": form,
            "started": view.contract_year.start <= today,
            "submit_opens": opens,
            "can_submit": opens is not None and opens <= today,
        },
        status=400 if form.errors else 200,
    )


def _true_up_chart(result: TrueUp) -> str:
    return bar_chart(
        title=_("Year %(year)s: committed, deployed and drawn down")
        % {"year": result.contract_year.number},
        labels=[row.product_label for row in result.rows],
        series=[
            (_("Committed"), [row.committed for row in result.rows]),
            (_("Deployed"), [row.deployed for row in result.rows]),
            (_("Drawn down"), [row.drawn_to_date for row in result.rows]),
        ],
    )


@organization_required(action=Action.ENTERPRISE_FLEX)
def true_up_view(request: PortalRequest, number: str, year: int) -> HttpResponse:
    reach = _reach(request, number, "view_true_up")
    result = true_up(reach, year, today=timezone.localdate())
    return render(
        request,
        "enterprise_flex/true_up.html",
        {
            "reach": reach,
            "contract": reach.contract,
            "result": result,
            "chart": _true_up_chart(result) if result.rows else "",
            "show_values": reach.allows("view_values"),
            "years": reach.contract.years(),
        },
    )


@organization_required(action=Action.ENTERPRISE_FLEX)
def true_up_export(request: PortalRequest, number: str, year: int, fmt: str) -> HttpResponse:
    # The exports module loads reportlab (about 8 MB of a web worker's memory): on first use.
    from . import exports

    reach = _reach(request, number, "run_reports")
    result = true_up(reach, year, today=timezone.localdate())
    if not result.started:
        # Nothing to export yet (no figures): the true-up page says when the year starts.
        messages.error(
            request,
            _(
                "There is nothing to export yet: contract year %(year)s starts on %(date)s "
                "and its true-up is available from then on."
            )
            % {"year": year, "date": short_date(result.contract_year.start)},
        )
        return redirect("ef-true-up", number=number, year=year)
    name = f"{reach.contract.number.lower()}-year-{year}-true-up"
    if fmt == "csv":
        response = HttpResponse(exports.true_up_csv(result), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response
    response = HttpResponse(exports.true_up_pdf(result), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
    return response
