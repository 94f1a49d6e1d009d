"""Bar charts as SVG rendered on the server (pygal): they need no JavaScript and they print."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

import pygal
from django.utils.safestring import SafeString, mark_safe
from pygal.style import Style

# Bootstrap's palette, so that the chart reads as part of the page.
STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#212529",
    foreground_strong="#212529",
    foreground_subtle="#6c757d",
    colors=("#6c757d", "#0d6efd", "#198754", "#dc3545"),
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif",
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=13,
    value_font_size=11,
    title_font_size=15,
)
ROW_HEIGHT = 34  # per product and series group, so that 50 lines stay legible
# The drawing's width in SVG units: the page scales it to its container (up to 720 px, see
# portal.css), so text stays legible on a 390 px phone without being huge on a desktop.
WIDTH = 600
# A product's name on the axis, in characters: a longer one is cut with an ellipsis (the table
# beside the chart names it in full). pygal's truncate_label did not apply to a horizontal chart's
# labels: a 60-character name left the bars 60 units wide, their axis figures run together.
LABEL_CHARS = 32


def _axis_label(label: str) -> str:
    """`label` ("<product> <version>") within LABEL_CHARS: the product's name is cut, the
    version kept, which tells two versions of one product apart."""
    if len(label) <= LABEL_CHARS:
        return label
    name, _space, version = label.rpartition(" ")
    if name and len(version) <= LABEL_CHARS // 3:
        return name[: LABEL_CHARS - len(version) - 2].rstrip() + "… " + version
    return label[: LABEL_CHARS - 1].rstrip() + "…"


def _static_only(element: ET.Element) -> bool:
    """Whether the chart is better without `element` under the Content-Security-Policy."""
    if not isinstance(element.tag, str):
        return False
    tag = element.tag.rsplit("}", 1)[-1]
    # The <style> pygal writes inside the SVG (style-src 'self' refuses it, an error in the
    # console on every page with a chart: portal.css carries its rules), and its <script>.
    if tag in ("style", "script"):
        return True
    # The tooltips' box, hidden by an inline style="opacity: 0", which the policy refuses too;
    # only the removed script ever showed it.
    return "tooltip-overlay" in element.get("class", "").split()


def bar_chart(
    *, title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[int]]]
) -> SafeString:
    """A horizontal bar chart, one group of bars per label, as inline SVG markup.

    pygal escapes every text it writes; its <script> (tooltips), its <style> and the tooltips'
    box (an inline style attribute) are removed, so the markup is static and inlines under a
    strict Content-Security-Policy without a refusal; the style's rules are in portal.css.
    """
    chart = pygal.HorizontalBar(
        style=STYLE,
        js=[],
        title=title,
        width=WIDTH,
        height=120 + ROW_HEIGHT * max(1, len(labels)) * max(1, len(series)) // 2,
        legend_at_bottom=True,
        legend_at_bottom_columns=len(series),
        print_values=False,
        truncate_label=-1,
        truncate_legend=-1,
        show_y_guides=False,
        margin=8,
        spacing=12,
        explicit_size=False,
        include_x_axis=True,
    )
    # pygal draws horizontal bars bottom-up: reversed, the first product is on top as in the table.
    chart.x_labels = [_axis_label(label) for label in labels][::-1]
    for name, values in series:
        chart.add(name, list(values)[::-1])
    root = chart.render_tree()
    for parent in root.iter():
        for child in list(parent):
            if _static_only(child):
                parent.remove(child)
    root.set("role", "img")
    root.set("aria-label", title)
    root.set("preserveAspectRatio", "xMinYMin meet")
    svg = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    # Built by pygal and ElementTree, which escape every text they write.
    return mark_safe(svg)
