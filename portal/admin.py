from __future__ import annotations

import json
from typing import Any

from allauth.account.admin import EmailAddressAdmin as AllauthEmailAddressAdmin
from allauth.account.models import EmailAddress
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.functional import Promise as StrPromise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import (
    AuditEvent,
    Delegation,
    Invitation,
    Membership,
    Organization,
    OutboundEmail,
    User,
)
from .selectors import organization_kind_ties
from .services import (
    USER_ACCESS_FIELDS,
    PortalError,
    audit_record,
    membership_end_problem,
    memberships_staff_changed,
    organization_staff_change,
    outbound_emails_resend,
    user_access_staff_changed,
    user_active_staff_change,
)
from .templatetags.portal_tags import audit_action


def action_confirmation(
    model_admin: admin.ModelAdmin,  # type: ignore[type-arg]
    request: HttpRequest,
    *,
    template: str,
    title: str | StrPromise,
    queryset: QuerySet[Any],
    applicable: QuerySet[Any],
    count_name: str,
    related: tuple[str, ...],
    **extra: Any,
) -> HttpResponse:
    """The page an admin action that cannot be undone shows first: what it will act on (the
    first 50 of `applicable`, their count as `count_name`) and how many of the selection it
    leaves alone (`other_count`); the page posts the selection back with "apply"."""
    count = applicable.count()
    return render(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "objects": list(applicable.select_related(*related)[:50]),
            count_name: count,
            "other_count": queryset.count() - count,
            "queryset": queryset,
            "opts": model_admin.model._meta,
            **extra,
        },
    )


class RefusalAsMessageMixin(admin.ModelAdmin):
    """A save the service refuses under its lock (the object changed since the page was read)
    reads as a message on the page it was made on, not a server error; the admin's transaction
    is rolled back by then, so nothing was saved. `refusals`: the errors that are refusals."""

    refusals: tuple[type[Exception], ...] = (PortalError,)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except self.refusals as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class StaffEditAdmin(admin.ModelAdmin):
    """Staff additions and changes of a record that decides what customers get, audited: an
    addition is saved as Django saves it and audited as `created_action`; a change goes through
    the model's staff service (`staff_change`: checked under the row's lock, audited before and
    after)."""

    created_action = ""

    def staff_change(self, obj: Any, fields: list[str], actor: User) -> None:
        raise ImproperlyConfigured(f"{type(self).__name__} names no staff service")

    def created_organization(self, obj: Any) -> Organization | None:
        return None

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        actor: User = request.user  # type: ignore[assignment]
        if change:
            self.staff_change(obj, form.changed_data, actor)
            return
        super().save_model(request, obj, form, change)
        audit_record(
            action=self.created_action,
            actor=actor,
            organization=self.created_organization(obj),
            obj=obj,
            details={"name": str(obj), "reason": "staff"},
        )


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Staff deactivate a login instead of deleting it: deleting took its memberships and
    contract access with it, unchecked (an organization left with no administrator, a contract
    with no super user) and unaudited, and erased who did what in the history."""

    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("full_name", "language")}),
        (
            _("Permissions"),
            {
                "fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions"),
                "description": _(
                    "Users cannot be deleted: to end someone's access, untick Active. Their "
                    "memberships, contract access and history stay, and they can be reactivated."
                ),
            },
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate instead (see the class docstring)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            audit_record(
                action="user.created",
                actor=request.user,  # type: ignore[arg-type]
                obj=obj,
                details={"email": obj.email, "reason": "staff"},
            )
        if change and "is_active" in form.changed_data:
            warnings = user_active_staff_change(user=obj, actor=request.user)  # type: ignore[arg-type]
            for warning in warnings:
                self.message_user(request, warning, messages.WARNING)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if not change:
            return
        # Who the login is and what it may do, before (the form's initial values) and after:
        # groups and permissions are saved here, after the user row.
        changes = {}
        for name in USER_ACCESS_FIELDS:
            if name not in form.changed_data:
                continue
            before = _access_value(form.initial.get(name))
            after = _access_value(form.cleaned_data[name])
            if before != after:
                changes[name] = {"from": before, "to": after}
        user_access_staff_changed(
            user=form.instance,
            actor=request.user,  # type: ignore[arg-type]
            changes=changes,
        )

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and isinstance(response, HttpResponseRedirect):
            user = self.get_object(request, id)
            if user is not None:
                user_access_staff_changed(
                    user=user,
                    actor=request.user,  # type: ignore[arg-type]
                    changes={},
                    password=True,
                )
        return response


def _access_value(value: Any) -> Any:
    """A user field's value as the audit keeps it: names for groups and permissions, sorted."""
    if value is None or isinstance(value, bool | str):
        return value
    try:
        items = list(value)
    except TypeError:
        return str(value)
    return sorted(str(item.codename if hasattr(item, "codename") else item) for item in items)


class MembershipFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        # The rule membership_update keeps for administrators: an organization that has members
        # keeps an administrator (nobody else can invite, manage members or partners).
        kept = [
            f
            for f in self.forms
            if getattr(f, "cleaned_data", None) and not f.cleaned_data.get("DELETE")
        ]
        had_members = kept or any(f.instance.pk for f in self.forms)
        if had_members and not any(
            f.cleaned_data.get("role") == Membership.Role.ADMIN for f in kept
        ):
            raise ValidationError(
                _("An organization needs at least one administrator. Promote another member first.")
            )
        # What apps refuse (the last super user of a contract leaving): said here, on the form;
        # raised from the save, after the rows were written, it would be a server error.
        # A row deleted, or given to another person: the one the stored row names leaves.
        rows = [
            f.instance.pk
            for f in self.forms
            if f.instance.pk and (f not in kept or "user" in f.changed_data)
        ]
        stored = Membership.objects.select_related("user").in_bulk(rows)
        # Someone removed from one row and put on another stays (save_formset, _membership_ended).
        staying = {f.cleaned_data["user"].pk for f in kept if f.cleaned_data.get("user")}
        leaving = [m.user for m in stored.values() if m.user_id not in staying]
        problem = (
            membership_end_problem(organization=self.instance, users=leaving) if leaving else None
        )
        if problem:
            raise ValidationError(problem)


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipFormSet
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(RefusalAsMessageMixin, StaffEditAdmin):
    list_display = ["name", "account_number", "kind", "country", "created_at"]
    list_filter = ["kind", "country"]
    search_fields = ["name", "account_number", "country_legacy"]
    # country_legacy: what was typed before countries were codes and matched none.
    readonly_fields = ["account_number", "country_legacy", "created_at"]
    inlines = [MembershipInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Customer or partner decides what it may hold and whose pages its users see; once it
        # holds something of its kind, another kind would contradict it.
        if obj is not None and organization_kind_ties(obj):
            return [*self.readonly_fields, "kind"]
        return self.readonly_fields

    created_action = "organization.created"

    def staff_change(self, obj: Organization, fields: list[str], actor: User) -> None:
        organization_staff_change(organization=obj, fields=fields, actor=actor)

    def created_organization(self, obj: Organization) -> Organization | None:
        return obj

    # Refused as a message (RefusalAsMessageMixin): the Members inline checks the removals
    # first (MembershipFormSet.clean); a change made meanwhile elsewhere (another super user
    # demoted) is refused by the save, under its locks, as is a kind change once the
    # organization came to hold something of its kind.

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        kept = [f for f in formset.initial_forms if f not in formset.deleted_forms]
        # A row given to another person: the one it named leaves, the other joins. The form
        # already put the submitted user on the instance; the stored row says who was there.
        moved = [f.instance for f in kept if "user" in f.changed_data]
        leaving = [f.instance.pk for f in formset.deleted_forms if f.instance.pk]
        leaving += [m.pk for m in moved]
        stored = Membership.objects.select_related("user").in_bulk(leaving)
        removed = [stored[pk].user for pk in leaving]
        role_changes = [
            (f.instance, f.initial["role"])
            for f in kept
            if "role" in f.changed_data and "user" not in f.changed_data
        ]
        super().save_formset(request, form, formset, change)
        memberships_staff_changed(
            organization=form.instance,
            actor=request.user,  # type: ignore[arg-type]
            added=[*formset.new_objects, *moved],
            removed=removed,
            role_changes=role_changes,
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    """Administrators invite and withdraw on the Members page (invitation_create and
    invitation_revoke: email, audit, one open invitation per address); staff look. Edited here,
    a withdrawn link could be reopened, or its role changed, with no audit event."""

    list_display = ["email", "organization", "role", "created_at", "accepted_at", "revoked_at"]
    list_filter = ["role"]
    search_fields = ["email", "organization__name"]
    list_select_related = ["organization"]


class _NamedEmptyValuesFilter(admin.AllValuesFieldListFilter):
    """Django lists an empty value (an event about no object) as a link without text, which a
    screen reader cannot announce: name it."""

    def choices(self, changelist: Any) -> Any:
        for choice in super().choices(changelist):
            if choice["display"] == "":
                choice["display"] = _("(none)")
            yield choice


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "action",
        "description",
        "actor_email",
        "organization",
        "object_type",
        "object_id",
    ]
    list_filter = ["action", ("object_type", _NamedEmptyValuesFilter)]
    search_fields = ["action", "actor_email", "object_id", "organization__name"]
    date_hierarchy = "created_at"
    list_select_related = ["organization"]

    @admin.display(description=_("What happened"))
    def description(self, obj: AuditEvent) -> str:
        return audit_action(obj.action)


@admin.register(OutboundEmail)
class OutboundEmailAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "template",
        "subject_shown",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
    ]
    list_filter = ["status", "template"]
    search_fields = ["subject", "to"]
    exclude = ["attachments"]
    readonly_fields = ["written_from"]
    actions = ["resend"]

    @admin.display(description=_("to be written from"))
    def written_from(self, email: OutboundEmail) -> str:
        # What its sender writes it from (portal.emails.queue_email_later); empty once written.
        return json.dumps(email.compose, indent=2, sort_keys=True) if email.compose else "-"

    @admin.display(description=_("subject"), ordering="subject")
    def subject_shown(self, email: OutboundEmail) -> str:
        if email.compose is not None:  # portal.emails.queue_email_later
            return str(_("(written by the worker when it sends it)"))
        return email.subject

    def has_resend_permission(self, request: HttpRequest) -> bool:
        # The outbox cannot be edited (ReadOnlyAdmin), so "change" would hide the action from
        # everyone: it is for whoever holds the change permission on outbound emails.
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}")

    @admin.action(
        description=_("Send again now (failed or pending emails)"), permissions=["resend"]
    )
    def resend(self, request: HttpRequest, queryset: QuerySet[OutboundEmail]) -> None:
        count = outbound_emails_resend(emails=list(queryset), actor=request.user)  # type: ignore[arg-type]
        skipped = queryset.count() - count
        messages.success(
            request,
            ngettext("%(count)d email queued again.", "%(count)d emails queued again.", count)
            % {"count": count},
        )
        if skipped:
            messages.warning(
                request,
                ngettext(
                    "%(count)d email was skipped: it was already sent or is being sent.",
                    "%(count)d emails were skipped: they were already sent or are being sent.",
                    skipped,
                )
                % {"count": skipped},
            )


@admin.register(Delegation)
class DelegationAdmin(ReadOnlyAdmin):
    """Customers grant, change and revoke delegations themselves (Partners page); staff look."""

    list_display = ["customer", "partner", "status", "starts_on", "ends_on", "created_at"]
    list_filter = ["status"]
    search_fields = [
        "customer__name",
        "customer__account_number",
        "partner__name",
        "partner__account_number",
    ]
    list_select_related = ["customer", "partner"]
    date_hierarchy = "created_at"


# allauth's action verifies addresses for anyone who may view them: re-registered so that it
# takes the permission to change them, as every action here does.
admin.site.unregister(EmailAddress)


@admin.register(EmailAddress)
class EmailAddressAdmin(AllauthEmailAddressAdmin):
    @admin.action(
        description=AllauthEmailAddressAdmin.make_verified.short_description,  # type: ignore[attr-defined]
        permissions=["change"],
    )
    def make_verified(self, request: HttpRequest, queryset: QuerySet[EmailAddress]) -> None:
        super().make_verified(request, queryset)
