"""Reviewing a pinned definition that changed: what the model is told now, against what
the user approved.

The pin itself (SHA-256 of the canonical definition) is ``console.model.tool_pin``; this
module shows people the difference the pin detected. Both sides are rendered as the
same pretty, key-sorted JSON, so the diff shows content changes and never key order,
and every invisible character is made visible, so a change that only adds a zero-width
space or tag characters still shows up as a changed line.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from console.trust.invisible import decode_hidden


def pretty_definition(definition: dict[str, Any]) -> list[str]:
    """The definition as reviewable lines: sorted keys, indented, invisibles made visible."""
    text = json.dumps(definition, indent=2, sort_keys=True, ensure_ascii=False)
    return [decode_hidden(line) for line in text.splitlines()]


def definition_diff(old: dict[str, Any], new: dict[str, Any], *, context: int = 3) -> str:
    """A unified diff from the approved definition (``old``) to the live one (``new``);
    empty when they render the same."""
    lines = difflib.unified_diff(
        pretty_definition(old), pretty_definition(new), "approved", "live", n=context, lineterm=""
    )
    return "\n".join(lines)
