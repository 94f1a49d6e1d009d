"""Staff create and amend contracts in admin: the contract with its lines, sites and users as
inlines. Nothing here saves a model itself: every save goes through enterprise_flex.services
(audited), and the forms check the services' rules first so that a refusal is a form error.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from portal.models import Organization, User

from .models import (
    EFContract,
    EFContractUser,
    EFDeploymentEntry,
    EFDeploymentReport,
    EFDrawdown,
    EFInvitation,
    EFLine,
    EFReminder,
    EFSite,
)
from .services import (
    SITE_FIELDS,
    contract_create,
    contract_dates_refusal,
    contract_update,
    contract_user_problem,
    contract_user_remove,
    contract_user_set,
    default_grey_year_end,
    line_add,
    line_change_refusal,
    line_delete,
    line_update,
    site_create,
    site_update,
)


def _staff(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Inlines


class LineForm(forms.ModelForm):
    # Checked in the form's clean, before the model validates its check constraints: an error
    # on a field keeps the constraint on it from saying the same as "Constraint … is violated."
    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        line: EFLine = self.instance
        if data.get("DELETE"):
            return data  # a line with drawdowns is protected: the admin refuses to delete it
        if line.pk and "version" in self.changed_data:
            # line_update amends terms only: a new version would be dropped in silence.
            self.add_error(
                "version",
                _(
                    "A line's product version cannot change. Add a line for the other "
                    "version, and remove this one if nothing was drawn down from it."
                ),
            )
        committed = data.get("committed_quantity")
        if committed is None:
            return data
        refusal = line_change_refusal(
            drawn=line.drawn_quantity if line.pk else 0,
            committed=committed,
            overage_allowed=bool(data.get("overage_allowed")),
            unit_value=data.get("unit_value") or 0,
        )
        if refusal:
            self.add_error(*refusal)
        return data


class EFLineInline(admin.TabularInline):
    model = EFLine
    form = LineForm
    extra = 1
    fields = [
        "version",
        "committed_quantity",
        "drawn_quantity",
        "unit_value",
        "currency",
        "overage_allowed",
    ]
    readonly_fields = ["drawn_quantity"]
    raw_id_fields = ["version"]


class SiteInlineFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        names: set[str] = set()
        if self.instance.pk is None:
            names.add(EFSite.MAIN_SITE_NAME.lower())  # created with the contract
        for form in self.forms:
            name = (
                (form.cleaned_data.get("name") or "").strip().lower() if form.cleaned_data else ""
            )
            if not name:
                continue
            if name in names:
                form.add_error("name", _("Each site of a contract needs its own name."))
            names.add(name)


class EFSiteInline(admin.StackedInline):
    model = EFSite
    formset = SiteInlineFormSet
    extra = 0
    can_delete = False  # sites keep their drawdowns: deactivate instead
    fields = [*SITE_FIELDS, "country_legacy", "active"]
    # What was typed before countries were codes and matched none.
    readonly_fields = ["country_legacy"]


class ContractUserInlineFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        organization = getattr(self.instance, "organization", None)
        supers = 0
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data:
                continue
            if data.get("DELETE"):
                continue
            user = data.get("user")
            if user is not None and organization is not None:
                problem = contract_user_problem(organization=organization, user=user)
                if problem:
                    form.add_error("user", problem)
            if data.get("level") == EFContractUser.Level.SUPER:
                supers += 1
        # `initial`: the instance already carries the submitted level.
        had_supers = self.instance.pk is not None and any(
            form.instance.pk and form.initial.get("level") == EFContractUser.Level.SUPER
            for form in self.forms
        )
        if had_supers and supers == 0:
            raise forms.ValidationError(
                _("A contract needs at least one super user. Make another user super user first.")
            )


class EFContractUserInline(admin.TabularInline):
    model = EFContractUser
    formset = ContractUserInlineFormSet
    extra = 1
    fields = ["user", "level", "created_at", "added_by"]
    readonly_fields = ["created_at", "added_by"]
    raw_id_fields = ["user"]


# ---------------------------------------------------------------------------------------------
# Contracts


class ContractForm(forms.ModelForm):
    class Meta:
        model = EFContract
        fields = ["organization", "period_start", "period_end", "grey_year_end", "status"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "grey_year_end" in self.fields:
            self.fields["grey_year_end"].required = False
        if "organization" in self.fields:
            field = self.fields["organization"]
            assert isinstance(field, forms.ModelChoiceField)
            field.queryset = Organization.objects.filter(kind=Organization.Kind.CUSTOMER)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("period_start"), data.get("period_end")
        if start and end:
            refusal = contract_dates_refusal(
                period_start=start, period_end=end, grey_year_end=data.get("grey_year_end")
            )
            if refusal:
                # On its field: the model's check constraint on that field is then not
                # validated again, which would say the same as "Constraint … is violated."
                self.add_error(*refusal)
        return data


@admin.register(EFContract)
class EFContractAdmin(admin.ModelAdmin):
    form = ContractForm
    list_display = [
        "number",
        "organization",
        "period_start",
        "period_end",
        "grey_year_end",
        "status",
        "created_at",
    ]
    list_filter = ["status", "period_start"]
    search_fields = ["number", "organization__name", "organization__account_number"]
    list_select_related = ["organization"]
    readonly_fields = ["number", "created_at", "created_by"]
    inlines = [EFLineInline, EFSiteInline, EFContractUserInline]
    date_hierarchy = "period_start"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["organization", "period_start", "period_end", "grey_year_end", "status"]
        return [
            "number",
            "organization",
            "period_start",
            "period_end",
            "grey_year_end",
            "status",
            "created_at",
            "created_by",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:
            return [*self.readonly_fields, "organization"]  # a contract never changes hands
        return self.readonly_fields

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        # On the add page the customer is not chosen yet, so users cannot be checked against
        # it; the Main site is created with the contract. Lines can be entered at once.
        if obj is None:
            return [EFLineInline]
        return self.inlines

    def save_model(self, request: HttpRequest, obj: EFContract, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            contract_update(
                contract=obj,
                actor=_staff(request),
                period_start=data["period_start"],
                period_end=data["period_end"],
                # Empty: one year after the period, as the field says (and as on the add
                # page); `obj` already carries the form's empty value, never the stored one.
                grey_year_end=data.get("grey_year_end")
                or default_grey_year_end(data["period_end"]),
                status=data["status"],
            )
            obj.refresh_from_db()
            return
        created = contract_create(
            organization=data["organization"],
            period_start=data["period_start"],
            period_end=data["period_end"],
            grey_year_end=data.get("grey_year_end"),
            status=data["status"],
            actor=_staff(request),
        )
        # The admin saves the inlines against this instance: make it the created row.
        obj.pk = created.pk
        obj.number = created.number
        obj.grey_year_end = created.grey_year_end
        obj.created_at = created.created_at
        obj.created_by = created.created_by
        obj._state.adding = False
        obj._state.db = created._state.db

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        contract: EFContract = form.instance
        actor = _staff(request)
        # What formset.save() would record, for the admin's change message.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        # Rows leave after every other row is saved: a super user removed or replaced in the
        # same save that makes another user super finds that one already there. A user still
        # named on another row stays (two rows that swap users swap levels).
        leaving: list[Any] = []
        staying = {
            f.cleaned_data["user"].pk
            for f in formset.forms
            if isinstance(f.instance, EFContractUser)
            and getattr(f, "cleaned_data", None)
            and not f.cleaned_data.get("DELETE")
            and f.cleaned_data.get("user") is not None
        }
        for inline_form in formset.forms:
            data = getattr(inline_form, "cleaned_data", None)
            if not data:
                continue
            instance = inline_form.instance
            if data.get("DELETE"):
                if instance.pk:
                    leaving.append(self._stored(instance))
                    formset.deleted_objects.append(instance)
                continue
            if instance.pk and not inline_form.has_changed():
                continue
            if isinstance(instance, EFContractUser) and instance.pk:
                # The form already put the submitted user on the instance: the stored row
                # says who was there before. Another person on the row: the old one leaves.
                before = self._stored(instance)
                if before.user_id != data["user"].pk:
                    leaving.append(before)
            saved = self._save(contract, instance, data, actor)
            if instance.pk:
                formset.changed_objects.append((saved, inline_form.changed_data))
            else:
                formset.new_objects.append(saved)
        for stored in leaving:
            if isinstance(stored, EFContractUser) and stored.user_id in staying:
                continue
            self._delete(stored, actor)

    @staticmethod
    def _stored(instance: Any) -> Any:
        """The row as the database holds it, before this form's values were put on it."""
        if isinstance(instance, EFContractUser):
            return EFContractUser.objects.select_related("user").get(pk=instance.pk)
        return instance

    @staticmethod
    def _delete(instance: Any, actor: User) -> None:
        if isinstance(instance, EFLine):
            line_delete(line=instance, actor=actor)
        elif isinstance(instance, EFContractUser):
            contract_user_remove(contract_user=instance, actor=actor)

    @staticmethod
    def _save(contract: EFContract, instance: Any, data: dict[str, Any], actor: User) -> Any:
        if isinstance(instance, EFLine):
            terms = {
                "committed_quantity": data["committed_quantity"],
                "unit_value": data["unit_value"],
                "currency": data["currency"],
                "overage_allowed": data["overage_allowed"],
            }
            if instance.pk:
                return line_update(line=instance, actor=actor, **terms)
            return line_add(contract=contract, version=data["version"], actor=actor, **terms)
        if isinstance(instance, EFSite):
            values = {name: data.get(name, "") for name in SITE_FIELDS}
            if instance.pk:
                return site_update(site=instance, values=values, active=data["active"], actor=actor)
            site = site_create(contract=contract, values=values, actor=actor)
            if not data.get("active", True):
                site = site_update(site=site, values=values, active=False, actor=actor)
            return site
        if isinstance(instance, EFContractUser):
            return contract_user_set(
                contract=contract, user=data["user"], level=data["level"], actor=actor
            )
        raise TypeError(f"Unexpected inline object {instance!r}")


# ---------------------------------------------------------------------------------------------
# Read-only records


class ReadOnlyAdmin(admin.ModelAdmin):
    """Written by the portal's services only; staff read them here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(EFDrawdown)
class EFDrawdownAdmin(ReadOnlyAdmin):
    list_display = [
        "contract",
        "line",
        "site",
        "quantity",
        "overage_quantity",
        "drawn_on",
        "created_by",
        "partner",
    ]
    list_filter = ["drawn_on"]
    search_fields = ["contract__number", "license__key", "created_by__email"]
    list_select_related = [
        "contract",
        "line__version__product",
        "line__contract",
        "site",
        "created_by",
        "partner",
    ]
    date_hierarchy = "drawn_on"
    show_full_result_count = False  # counting 100,000s of rows on every page is not worth it


class EFDeploymentEntryInline(admin.TabularInline):
    model = EFDeploymentEntry
    fields = ["line", "site", "quantity"]
    readonly_fields = ["line", "site", "quantity"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(EFDeploymentReport)
class EFDeploymentReportAdmin(ReadOnlyAdmin):
    list_display = ["contract", "year", "status", "updated_at", "submitted_at", "submitted_by"]
    list_filter = ["status"]
    search_fields = ["contract__number"]
    list_select_related = ["contract", "submitted_by"]
    inlines = [EFDeploymentEntryInline]


@admin.register(EFInvitation)
class EFInvitationAdmin(ReadOnlyAdmin):
    list_display = ["email", "contract", "level", "created_at", "accepted_at", "revoked_at"]
    search_fields = ["email", "contract__number"]
    list_select_related = ["contract"]
    exclude = ["token"]


@admin.register(EFReminder)
class EFReminderAdmin(ReadOnlyAdmin):
    list_display = ["contract", "year", "reason", "sent_at"]
    list_filter = ["reason"]
    search_fields = ["contract__number"]
    list_select_related = ["contract"]
