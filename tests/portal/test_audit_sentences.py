"""Every audit action the code base writes reads as a translated sentence in every history."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from portal.models import AuditEvent, Membership
from portal.templatetags.portal_tags import AUDIT_ACTIONS, audit_action
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory

ROOT = Path(__file__).resolve().parents[2]
APPS = ["portal", "licensing", "upgrades", "vouchers", "enterprise_flex", "fileconnect"]
# The calls that write an audit event, and the guard that names the event it writes later.
# audit_event_build: the events that bulk writers (a mint, licenses_issue) insert together.
WRITERS = {"audit_record", "audit_event_build", "_audit", "_audit_license", "CodeGuard"}


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _loop_values(node: ast.AST, name: str, parents: dict[ast.AST, ast.AST]) -> list[str] | None:
    """`for action, ... in (("a.b", ...), ...)`: the constants the loop gives `name`."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.For) and isinstance(node.target, ast.Tuple):
            names = [getattr(elt, "id", None) for elt in node.target.elts]
            if name in names and isinstance(node.iter, ast.Tuple | ast.List):
                position = names.index(name)
                return [row.elts[position].value for row in node.iter.elts]  # type: ignore[attr-defined]
    return None


def _forwards_parameter(node: ast.AST, name: str, parents: dict[ast.AST, ast.AST]) -> bool:
    """A helper that passes its own `action` parameter on: its callers are read instead."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.FunctionDef):
            args = node.args
            return name in {a.arg for a in args.args + args.kwonlyargs}
    return False


def _created_actions() -> list[str]:
    """The `created_action = "…"` of the admin classes (portal.admin.StaffEditAdmin)."""
    values = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Assign)
                    and [ast.unparse(t) for t in node.targets] == ["created_action"]
                    and isinstance(node.value, ast.Constant)
                    and node.value.value
                ):
                    values.append(node.value.value)
    return values


def written_actions() -> tuple[dict[str, str], list[str]]:
    """The action codes in the sources (code → where), and the call sites that could not be read."""
    found: dict[str, str] = {}
    unreadable: list[str] = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text())
            parents = {
                child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)
            }
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and _name(node.func) in WRITERS):
                    continue
                arg = next((k.value for k in node.keywords if k.arg == "action"), None)
                if arg is None and node.args and _name(node.func) != "CodeGuard":
                    arg = node.args[0]
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                values: list[str] | None = None
                if isinstance(arg, ast.Constant):
                    values = [arg.value]
                elif isinstance(arg, ast.IfExp):
                    values = [arg.body.value, arg.orelse.value]  # type: ignore[attr-defined]
                elif isinstance(arg, ast.Name):
                    if _forwards_parameter(node, arg.id, parents):
                        values = []
                    else:
                        values = _loop_values(node, arg.id, parents)
                elif isinstance(arg, ast.Attribute) and ast.unparse(arg) == "self.action":
                    values = []  # CodeGuard writes the action its constructor was given
                elif isinstance(arg, ast.Attribute) and ast.unparse(arg) == "self.created_action":
                    # portal.admin.StaffEditAdmin: each admin names its action as a class
                    # attribute, read below from every source.
                    values = _created_actions()
                if values is None:
                    unreadable.append(where)
                    continue
                for value in values:
                    found.setdefault(value, where)
    return found, unreadable


def test_the_sources_are_read() -> None:
    found, unreadable = written_actions()
    assert not unreadable, f"action codes this test cannot read; make them literals: {unreadable}"
    # A sanity check that the parse finds what is known to be written.
    assert {"license.issued", "license.upgraded", "ef.drawdown", "serial.rate_limited"} <= set(
        found
    )
    assert {"product.created", "version.created", "registration.created"} <= set(found)


def test_every_written_action_has_a_sentence() -> None:
    found, _unreadable = written_actions()
    missing = {code: where for code, where in found.items() if code not in AUDIT_ACTIONS}
    assert not missing, f"audit actions without a sentence in AUDIT_ACTIONS: {missing}"


def test_no_sentence_is_a_code_and_all_are_translated() -> None:
    with translation.override("pt-br"):
        for code in AUDIT_ACTIONS:
            assert audit_action(code) != code
            assert "." not in audit_action(code)
    with translation.override("en"):
        english = {code: audit_action(code) for code in AUDIT_ACTIONS}
    with translation.override("pt-br"):
        untranslated = [code for code in AUDIT_ACTIONS if audit_action(code) == english[code]]
    assert not untranslated
    assert audit_action("something.unknown") != "something.unknown"


@pytest.mark.django_db
@pytest.mark.parametrize("code", sorted(AUDIT_ACTIONS))
def test_license_history_never_shows_a_code(code: str) -> None:
    event = AuditEvent(action=code, details={})
    html = render_to_string("licensing/includes/_history_event.html", {"event": event})
    assert code not in html
    assert html.strip()


@pytest.mark.django_db
def test_license_page_and_partners_page_show_sentences(client) -> None:  # type: ignore[no-untyped-def]
    membership = MembershipFactory(role=Membership.Role.ADMIN)
    license = LicenseFactory(owner=membership.organization)
    AuditEvent.objects.create(
        action="vouchers.converted",
        organization=membership.organization,
        object_type="licensing.license",
        object_id=str(license.pk),
        details={},
    )
    client.force_login(membership.user)
    page = client.get(reverse("license-detail", args=[license.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert "vouchers.converted" not in page.content.decode()
    assert "Converted vouchers into licenses" in page.content.decode()
