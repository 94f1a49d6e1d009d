"""The Enterprise Flexible charts are drawn by the portal's stylesheet, not the SVG's own.

pygal puts its stylesheet in a <style> inside the SVG; the Content-Security-Policy
(style-src 'self') refuses it, and the browser drew every bar, axis and label in black.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

from enterprise_flex.charts import STYLE, bar_chart

PORTAL_CSS = Path(settings.BASE_DIR, "static", "css", "portal.css").read_text()


def test_csp_refuses_inline_styles() -> None:
    """What makes the stylesheet necessary: if this changes, the copy in portal.css may go."""
    assert "'unsafe-inline'" not in settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["style-src"]


def test_the_chart_root_carries_the_class_the_rules_select() -> None:
    svg = bar_chart(title="t", labels=["a"], series=[("s", [1])])
    assert re.match(r'<svg [^>]*class="pygal-chart"', svg)


def test_every_series_colour_and_the_transparent_backgrounds_are_in_portal_css() -> None:
    for number, colour in enumerate(STYLE.colors):
        assert f".pygal-chart .color-{number},.pygal-chart .color-{number} a:visited" in PORTAL_CSS
        assert f"stroke:{colour};fill:{colour}" in PORTAL_CSS
    assert ".pygal-chart .plot > .background{fill:transparent}" in PORTAL_CSS
    assert f".pygal-chart .graph{{fill:{STYLE.foreground}}}" in PORTAL_CSS


def test_the_chart_carries_no_inline_style_the_policy_would_refuse() -> None:
    # pygal's <style> and the tooltips' style="opacity: 0" were each an error in the console.
    svg = bar_chart(title="t", labels=["a", "b"], series=[("s", [1, 2]), ("u", [3, 4])])
    assert "<style" not in svg and "style=" not in svg and "<script" not in svg
    assert 'class="series serie-0 color-0"' in svg  # the bars are still drawn


def test_a_long_product_name_is_cut_on_the_axis_not_the_plot() -> None:
    # A 60-character name was drawn in full: the plot shrank to ~60 units, its figures ran
    # together ("0100200300…") and the legend overlapped.
    name = "Data Loss Prevention Network Monitor for Cloud Enterprise Plus 16.0"
    svg = str(bar_chart(title="t", labels=[name, "Short"], series=[("s", [100, 300])]))
    assert name not in svg
    assert "Data Loss Prevention Netwo… 16.0" in svg  # the version is kept
    assert ">Short<" in svg
