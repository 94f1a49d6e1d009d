"""Random, huge and control-character input never gives a 500 (Hypothesis).

Two layers: every Form class of the portal's forms modules, fed directly; and every POST
handler of the portal's URL patterns, fed through the test client with the field names of the
form its page renders. Runs are kept small (a few examples each, no deadline) so that the suite
stays fast; each run still starts with the odd values below, which are what found the 500s.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest
from django import forms
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from licensing.models import CustomField
from tests.licensing.factories import LicenseFactory, SerialNumberFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db

FORM_MODULES = ["portal.forms", "licensing.forms", "upgrades.forms", "vouchers.forms"]
OUR_APPS = ("portal", "licensing", "upgrades", "vouchers")

ODD = [
    "\x00",
    "abc\x00def",
    "\x01\x02\x1b[31m\x7f",
    "1e999999",
    "9" * 5000,
    "-1",
    "NaN",
    "Infinity",
    "\u202egnp.exe",
    "😀" * 50,
    "A" * 1_000_000,
    "'; drop table licensing_license; --",
    "<script>alert(1)</script>",
    "%00",
    "\r\n\r\n",
    "2026-13-45",
    "00000000-0000-0000-0000-000000000000",
    "not-a-uuid",
    "",
    " ",
]
VALUES = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=20),
    st.sampled_from(ODD),
    st.integers().map(str),
)
FUZZ = settings(
    max_examples=8,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- forms, fed directly ------------------------------------------------------------------------


def _form_classes() -> list[type[forms.BaseForm]]:
    found = []
    for name in FORM_MODULES:
        module = importlib.import_module(name)
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, forms.BaseForm) and cls.__module__ == name:
                found.append(cls)
    return found


def _context() -> dict[str, Any]:
    membership = MembershipFactory()
    request = RequestFactory().post("/")
    request.user = membership.user
    request.session = {}  # type: ignore[assignment]
    organization = membership.organization
    fields = [
        CustomField.objects.create(organization=organization, name=name, field_type=kind, **extra)
        for name, kind, extra in (
            ("Site", "text", {}),
            ("Seats", "number", {}),
            ("Renewal", "date", {}),
            ("Tier", "choice", {"choices": "Gold\nSilver"}),
        )
    ]
    serial = SerialNumberFactory(version__product__node_locked=True)
    return {
        "request": request,
        "organization": organization,
        "custom_fields": fields,
        "serial": serial,
    }


# What each form needs besides its data; a new form without an entry fails the test below
# unless it takes nothing else.
def _kwargs(cls: type[forms.BaseForm], ctx: dict[str, Any]) -> dict[str, Any] | None:
    needs: dict[str, Callable[[], dict[str, Any]]] = {
        "SerialForm": lambda: {"request": ctx["request"], "organization": ctx["organization"]},
        "NotificationIdForm": lambda: {
            "request": ctx["request"],
            "organization": ctx["organization"],
        },
        "VoucherCodesForm": lambda: {
            "request": ctx["request"],
            "organization": ctx["organization"],
        },
        "CustomFieldForm": lambda: {"organization": ctx["organization"]},
        "CustomValuesForm": lambda: {"custom_fields": ctx["custom_fields"]},
        "LineForm": lambda: {"lines": []},
        "QuantityForm": lambda: {"remaining": 5},
        "RegistrationForm": lambda: (
            {"serial": ctx["serial"], "targets": []} if cls.__module__ == "licensing.forms" else {}
        ),
        # allauth's password forms are for an account (the reset form's temp_key is checked
        # by its view, before the form).
        "PortalChangePasswordForm": lambda: {"user": ctx["request"].user},
        "PortalResetPasswordKeyForm": lambda: {"user": ctx["request"].user, "temp_key": "key"},
        "PortalLoginForm": lambda: {"request": ctx["request"]},
        # allauth's sign-up form needs allauth's request context: fuzzed through its page below.
        "PortalSignupForm": lambda: {"_skip": True},
    }
    if cls.__name__ in needs:
        kwargs = needs[cls.__name__]()
        return None if kwargs.get("_skip") else kwargs
    return {}


def _field_names(form: forms.BaseForm) -> list[str]:
    return [form.add_prefix(name) for name in form.fields]


FORM_CLASSES = _form_classes()


def test_every_forms_module_was_walked() -> None:
    names = {cls.__name__ for cls in FORM_CLASSES}
    assert {"SerialForm", "VoucherCodesForm", "NotificationIdForm", "OrganizationForm"} <= names


@pytest.mark.parametrize("cls", FORM_CLASSES, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_forms_take_any_input(cls: type[forms.BaseForm]) -> None:
    ctx = _context()
    kwargs = _kwargs(cls, ctx)
    if kwargs is None:
        return  # covered through its page (test_post_handlers_take_any_input)
    names = _field_names(cls(**kwargs))

    @FUZZ
    @given(data=st.fixed_dictionaries(dict.fromkeys(names, VALUES)))
    @example(data=dict.fromkeys(names, "\x00"))
    @example(data=dict.fromkeys(names, "A" * 1000000))
    @example(data=dict.fromkeys(names, "1e999999"))
    def check(data: dict[str, str]) -> None:
        form = cls(data=data, **kwargs)
        # Never an exception: either valid, or errors a person can read.
        if not form.is_valid():
            assert form.errors

    check()


# -- every POST handler, through the client ------------------------------------------------------


def _routes(resolver: URLResolver, prefix: str = "") -> list[str]:
    found = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            found += _routes(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and entry.callback.__module__.split(".")[0] in OUR_APPS:
            found.append(prefix + str(entry.pattern))
    return found


def _fill(route: str, license_pk: str) -> str:
    path = "/" + route
    for token, value in (
        ("<uuid:pk>", license_pk),
        ("<int:pk>", "1"),
        ("<str:token>", "nope"),
        ("<slug:token>", "nope"),
        ("<str:fmt>", "csv"),
    ):
        path = path.replace(token, value)
    return path


ROUTES = sorted(set(_routes(get_resolver())) | {"accounts/signup/", "accounts/login/"})
_FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.IGNORECASE | re.DOTALL)
_INPUT = re.compile(r"<(?:input|select|textarea|button)\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r'(name|value|type|action|method)="([^"]*)"')


def _forms_by_action(html: str, page_path: str) -> dict[str, tuple[dict[str, str], list[str]]]:
    """Each POST form of a page: its action → (hidden inputs as set, other field names)."""
    found: dict[str, tuple[dict[str, str], list[str]]] = {}
    for form_attrs, body in _FORM.findall(html):
        attrs = dict(_ATTR.findall(form_attrs))
        if attrs.get("method", "get").lower() != "post":
            continue
        hidden, visible = found.setdefault(attrs.get("action") or page_path, ({}, []))
        for tag in _INPUT.findall(body):
            field = dict(_ATTR.findall(tag))
            name = field.get("name")
            if not name or name == "csrfmiddlewaretoken":
                continue
            if field.get("type") == "hidden":
                hidden[name] = field.get("value", "")
            elif name not in visible:
                visible.append(name)
    return found


def _html(response: Any) -> str:
    if response.streaming or "html" not in response.get("Content-Type", ""):
        return ""
    return response.content.decode(errors="replace")


@pytest.mark.parametrize("route", ROUTES)
def test_post_handlers_take_any_input(route: str) -> None:
    admin = MembershipFactory(role="admin")
    MembershipFactory(user=admin.user)  # two organizations: the switcher is on every page
    license = LicenseFactory(owner=admin.organization)
    CustomField.objects.create(organization=admin.organization, name="Seats", field_type="number")
    client = Client()
    if not route.startswith("accounts/"):
        client.force_login(admin.user)
    path = _fill(route, str(license.pk))
    # The form that posts here: on the page itself, or on the pages that link its actions
    # (a license's page, the list, the members page, any page's organization switcher).
    forms_seen: dict[str, tuple[dict[str, str], list[str]]] = {}
    sources = [path, f"/licenses/{license.pk}/", "/licenses/", "/organization/members/"]
    for source in sources:
        for action, fields in _forms_by_action(_html(client.get(source)), source).items():
            forms_seen.setdefault(action, fields)
    hidden, names = forms_seen.get(path, ({}, []))
    names = names or ["name", "email", "serial", "codes", "next", "q", "organization"]
    # Hidden inputs too: as the page set them (to reach the handler's later steps), or not.
    strategies = {name: st.one_of(st.just(value), VALUES) for name, value in hidden.items()}
    strategies.update(dict.fromkeys(names, VALUES))

    @FUZZ
    @given(data=st.fixed_dictionaries(strategies))
    @example(data={**hidden, **dict.fromkeys(names, "\x00")})
    @example(data={**hidden, **dict.fromkeys(names, "A" * 1_000_000)})
    @example(data={**hidden, **dict.fromkeys(names, "1e999999")})
    @example(data=dict.fromkeys([*hidden, *names], "foo"))
    def check(data: dict[str, str]) -> None:
        response = client.post(path, data)
        assert response.status_code < 500, (path, response.status_code)

    check()


def test_the_post_handlers_forms_are_found() -> None:
    """The fuzzing above reaches the fields of the forms that post to each handler."""
    admin = MembershipFactory(role="admin")
    MembershipFactory(user=admin.user)
    license = LicenseFactory(owner=admin.organization)
    field = CustomField.objects.create(
        organization=admin.organization, name="Seats", field_type="number"
    )
    client = Client()
    client.force_login(admin.user)
    detail = f"/licenses/{license.pk}/"
    found = _forms_by_action(_html(client.get(detail)), detail)
    assert f"cf_{field.pk}" in found[f"/licenses/{license.pk}/custom-data/"][1]
    assert "next" in found["/organization/switch/"][0]
