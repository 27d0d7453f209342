"""A device sign-in code in letters four lines tall, readable from across the room
while the user types it on a phone.

Textual's ``Digits`` knows only 0-9 and A-F; device codes use the whole alphabet
(RFC 8628 suggests consonants). This is a classic 5x7 dot font drawn with half blocks.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

FONT_5X7: dict[str, str] = {
    "A": ".###. #...# #...# #...# ##### #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "###.. #..#. #...# #...# #...# #..#. ###..",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# #...# .#.#. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    "-": "..... ..... ..... ##### ..... ..... .....",
    " ": "..... ..... ..... ..... ..... ..... .....",
}
HALF = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


def big_lines(code: str) -> list[str] | None:
    """The code as four lines of half blocks, or None when a character has no glyph."""
    glyphs = []
    for char in code.upper():
        glyph = FONT_5X7.get(char)
        if glyph is None:
            return None
        rows = [[dot == "#" for dot in row] for row in glyph.split()]
        glyphs.append([*rows, [False] * 5])  # eight dot rows: four lines of two
    lines = []
    for line in range(4):
        top, bottom = 2 * line, 2 * line + 1
        lines.append(" ".join("".join(HALF[(g[top][x], g[bottom][x])] for x in range(5)) for g in glyphs))
    return lines


class DeviceCode(Vertical):
    """The code big (when every character has a glyph and it fits), and always plain too,
    so it can be read letter by letter or selected."""

    DEFAULT_CSS = """
    DeviceCode { height: auto; width: 1fr; }
    DeviceCode #big { width: 1fr; height: auto; color: $accent; text-style: bold; text-align: center; }
    DeviceCode #plain { width: 1fr; height: auto; text-style: bold; text-align: center; margin-top: 1; }
    """

    def __init__(self, code: str = "", *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.code = code

    def compose(self) -> ComposeResult:
        yield Static("", id="big", markup=False)
        yield Static("", id="plain", markup=False)

    def on_mount(self) -> None:
        self.show(self.code)

    def show(self, code: str) -> None:
        self.code = code
        lines = big_lines(code) if code else None
        big = self.query_one("#big", Static)
        big.update("\n".join(lines) if lines else code)
        big.display = bool(code)
        self.query_one("#plain", Static).update(" ".join(code) if lines else "")
