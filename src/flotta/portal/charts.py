"""Usage broken down per day, app or device, and horizontal bar charts as inline SVG drawn
on the server (no script, no chart library).

Each chart is an `<svg role="img">` named by its `<title>` and described by a `<desc>` that
reads out every bar, so a screen reader hears the data; the page also shows it as a table.
Bar lengths are whole pixels computed from exact values: no float ever touches money.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from markupsafe import Markup, escape

from flotta.billing.categories import Category
from flotta.billing.prices import CATEGORY_ORDER, PriceBook, floor_text
from flotta.billing.queries import UsageRow

WIDTH = 640
LABEL_WIDTH = 190
VALUE_WIDTH = 130
BAR_HEIGHT = 18
GAP = 8
PAD = 4
MAX_LABEL = 28


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: its label, its exact value (the length) and the value as the reader sees it."""

    label: str
    value: Fraction | int
    text: str


def _length(value: Fraction | int, largest: Fraction | int, room: int) -> int:
    """Pixels for `value` on a scale where `largest` fills `room`; a non-zero value shows."""
    if value <= 0 or largest <= 0:
        return 0
    return max(1, int(Fraction(value) * room / Fraction(largest)))


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def bar_chart(chart_id: str, title: str, bars: Sequence[Bar]) -> Markup:
    """An accessible SVG bar chart; empty markup when there is nothing to draw."""
    if not bars:
        return Markup("")
    room = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    largest = max(bar.value for bar in bars)
    height = PAD * 2 + len(bars) * (BAR_HEIGHT + GAP) - GAP
    summary = "; ".join(f"{bar.label}: {bar.text}" for bar in bars)
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title" aria-describedby="{escape(chart_id)}-desc" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(summary)}</desc>',
    ]
    for index, bar in enumerate(bars):
        top = PAD + index * (BAR_HEIGHT + GAP)
        middle = top + BAR_HEIGHT // 2 + 5
        length = _length(bar.value, largest, room)
        parts.append(
            f"<g><title>{escape(bar.label)}: {escape(bar.text)}</title>"
            f'<text x="0" y="{middle}" font-size="13">{escape(_short(bar.label))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{top}" width="{length}" height="{BAR_HEIGHT}" '
            f'fill="#0b5fff"></rect>'
            f'<text x="{LABEL_WIDTH + length + 6}" y="{middle}" font-size="13">'
            f"{escape(bar.text)}</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def device_label(device: str) -> str:
    kind, _, tag = device.partition(":")
    if kind == "vehicle":
        return f"Vehicle {tag}"
    if kind == "site":
        return f"Energy site {tag}"
    return "No device (account level)"


@dataclass
class Group:
    """Usage of one day, app or device: quantities per category and their exact cost."""

    label: str
    key: str
    quantities: dict[Category, int] = field(default_factory=dict)
    cost: Fraction = Fraction(0)

    def cells(self) -> list[int]:
        return [self.quantities.get(category, 0) for category in CATEGORY_ORDER]

    def cost_text(self) -> str:
        return floor_text(self.cost)


def group_rows(
    book: PriceBook,
    rows: Iterable[UsageRow],
    key: Callable[[UsageRow], str],
    label: Callable[[str], str],
) -> list[Group]:
    """Rows summed per key, each with its cost; in key order."""
    groups: dict[str, Group] = {}
    for row in rows:
        name = key(row)
        group = groups.setdefault(name, Group(label(name), name))
        group.quantities[row.category] = group.quantities.get(row.category, 0) + row.quantity
        group.cost += book.cost(row.category, row.quantity)
    return [groups[name] for name in sorted(groups)]


def chart_of(book: PriceBook, chart_id: str, title: str, groups: list[Group]) -> Markup:
    bars = [Bar(g.label, g.cost, f"{floor_text(g.cost)} {book.currency}") for g in groups]
    return bar_chart(chart_id, title, bars)
