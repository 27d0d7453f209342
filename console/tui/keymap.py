"""Which binding ids ``[tui.keys]`` in config.toml may name, and which it names in vain.

Textual ignores a keymap entry whose id no binding has, so a typo ("sever.toggle")
silently leaves the key as it was. The ids are read from the console's sources, not
from its classes: ``tbx doctor`` checks them without loading Textual and every screen,
and the console checks them without importing the screens it has not shown yet.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

SOURCES = Path(__file__).resolve().parent


def _id_of(call: ast.Call) -> str | re.Pattern[str] | None:
    """The ``id=`` of a ``Binding(...)`` call: a string, or a pattern for an f-string
    (``f"nav.{spec.mode}"`` matches ``nav.`` and any name)."""
    for keyword in call.keywords:
        if keyword.arg != "id":
            continue
        value = keyword.value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return value.value
        if isinstance(value, ast.JoinedStr):
            parts = [re.escape(part.value) if isinstance(part, ast.Constant) else r"[a-z0-9_]+"
                     for part in value.values]
            return re.compile("".join(parts))
    return None


@cache
def binding_ids(root: Path = SOURCES) -> tuple[frozenset[str], tuple[re.Pattern[str], ...]]:
    """Every binding id in the console's sources, and the patterns of generated ones."""
    ids: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "Binding(" not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Binding":
                found = _id_of(node)
                if isinstance(found, str):
                    ids.add(found)
                elif found is not None:
                    patterns.append(found)
    return frozenset(ids), tuple(patterns)


def unknown_ids(keys: Iterable[str], root: Path = SOURCES) -> list[str]:
    """The ids in ``keys`` that no binding has, in the order given."""
    ids, patterns = binding_ids(root)
    return [key for key in keys if key not in ids and not any(p.fullmatch(key) for p in patterns)]


def describe_unknown(keys: Mapping[str, str], root: Path = SOURCES) -> str:
    """One line on the ids of ``[tui.keys]`` that name no binding (with the likely
    meant one), or ``""`` when every id is known."""
    unknown = unknown_ids(keys, root)
    if not unknown:
        return ""
    ids = sorted(binding_ids(root)[0])
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, ids, n=1)
        parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return (f"[tui.keys] in config.toml names no binding {', '.join(parts)}: "
            f"{'that key is left as it was' if len(unknown) == 1 else 'those keys are left as they were'}")
