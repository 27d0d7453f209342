"""Every screen at 120x36 with fixed data and nothing live (pytest-textual-snapshot).

Regenerate after an intended change with: pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from console.tui.backend import Backend
from tests.support.tui import still_app

SIZE = (120, 36)


def test_toolboxes(snap_compare, seeded: Backend) -> None:  # noqa: ANN001
    assert snap_compare(still_app(seeded), terminal_size=SIZE)
