"""What goes in a table cell, and how wide it is.

``Cut`` and ``Choice`` fit a narrow cell (an ellipsis, a shorter form). ``cell_width``
says how many cells a value wants, exactly as Textual's DataTable would measure it
through rich, without rich's per-call cost: Textual asks the console for its options
(a terminal size lookup) for every cell it measures, ~10,000 times for a table of
2,000 rows, which was most of a big table's first fill. Widths are terminal cells
(``cell_len``): a CJK character or an emoji takes two.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.style import Style
from rich.text import Text


def _head(plain: str, cells: int) -> int:
    """How many of ``plain``'s first characters fit in ``cells`` cells."""
    if plain.isascii() and plain.isprintable():
        return min(max(cells, 0), len(plain))
    low, high = 0, len(plain)  # the longest start that fits: cell_len grows with the length
    while low < high:
        mid = (low + high + 1) // 2
        if cell_len(plain[:mid]) <= cells:
            low = mid
        else:
            high = mid - 1
    return low


def _tail(plain: str, cells: int) -> int:
    """Where the longest end of ``plain`` that fits in ``cells`` cells starts."""
    if plain.isascii() and plain.isprintable():
        return len(plain) - min(max(cells, 0), len(plain))
    low, high = 0, len(plain)
    while low < high:
        mid = (low + high) // 2
        if cell_len(plain[mid:]) <= cells:
            high = mid
        else:
            low = mid + 1
    return low


def cut(text: Text, width: int, where: str = "middle") -> Text:
    """``text`` in at most ``width`` cells, an ellipsis where it was cut (its styles kept)."""
    plain = text.plain
    if cell_len(plain) <= width:
        return text
    if width <= 1:
        return text[: _head(plain, width)]
    ellipsis = Text("…", style=text.style)
    if where == "end":
        return Text.assemble(text[: _head(plain, width - 1)], ellipsis)
    if where == "start":
        return Text.assemble(ellipsis, text[_tail(plain, width - 1):])
    head = (width - 1) * 2 // 5  # as grant_grid.shorten: the end tells names apart more often
    return Text.assemble(text[: _head(plain, head)], ellipsis, text[_tail(plain, width - 1 - head):])


@dataclass(frozen=True, eq=False)
class Cut:
    """Text that fits its cell: cut with an ellipsis when the cell is narrower, by
    default in the middle (``files/sea…_files``) so both a name's server and its end
    stay readable. A cell is its text: ``str()`` gives it whole and it equals it, so
    sorting, filters and whoever reads the table see what the user named."""

    text: str | Text
    style: str | Style = ""
    where: str = "middle"
    """Where the cut goes: ``middle``, ``end`` (prose), or ``start`` (a path whose end matters)."""

    @property
    def plain(self) -> str:
        return self.text.plain if isinstance(self.text, Text) else self.text

    def __str__(self) -> str:
        return self.plain

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Cut):
            return (self.text, self.style, self.where) == (other.text, other.style, other.where)
        return self.plain == other if isinstance(other, str) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.plain)

    def __lt__(self, other: object) -> bool:  # a table sorted by this column sorts by the text
        return self.plain < str(other)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = cell_len(self.plain)
        return Measurement(min(width, 1), width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        text = self.text.copy() if isinstance(self.text, Text) else Text(self.text, style=self.style)
        text.no_wrap, text.end = True, ""
        yield cut(text, options.max_width, self.where)


@dataclass(frozen=True, eq=False)
class Choice:
    """The longest of a few forms of a value that fits its cell (``2026-11-24 09:30:00``,
    ``11-24 09:30:00``, ``09:30:00``): a narrow table drops the part read least (and cuts
    the shortest with an ellipsis past that). The cell is its first, fullest form
    (``str()``, equality)."""

    forms: tuple[str, ...]
    style: str | Style = ""

    def __str__(self) -> str:
        return self.forms[0]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Choice):
            return (self.forms, self.style) == (other.forms, other.style)
        return self.forms[0] == other if isinstance(other, str) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.forms[0])

    def __lt__(self, other: object) -> bool:
        return self.forms[0] < str(other)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(cell_len(self.forms[-1]), cell_len(self.forms[0]))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        shown = next((form for form in self.forms if cell_len(form) <= width), None)
        if shown is None:  # not even the shortest fits: it is cut, and says so
            yield cut(Text(self.forms[-1], style=self.style, no_wrap=True, end=""), width, "end")
        else:
            yield Text(shown, style=self.style, no_wrap=True, end="")


def _lines_width(plain: str) -> int:
    """Rich's measure of a Text: its widest line."""
    if "\n" not in plain and plain.isprintable():  # no line break of any kind
        return cell_len(plain)
    return max(map(cell_len, plain.splitlines()), default=0)


def cell_width(cell: object) -> int | None:
    """The width a DataTable gives ``cell`` in a row one line high, or None for a kind of
    cell only rich's own measure can tell (it is measured there). Exact types only: a
    subclass may measure itself another way."""
    kind = type(cell)
    if kind is str and isinstance(cell, str):
        # A str cell is markup ("[b]") and may hold emoji codes (":smile:"); a table one
        # line high drops what follows its first line break.
        if "[" in cell or ":" in cell or "\n" in cell:
            return None
        return _lines_width(cell)
    if kind is Text and isinstance(cell, Text):
        return _lines_width(cell.plain)
    if kind is Cut and isinstance(cell, Cut):
        return cell_len(cell.plain)
    if kind is Choice and isinstance(cell, Choice):
        return cell_len(cell.forms[0])
    return 0 if cell is None else None
