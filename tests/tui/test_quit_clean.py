"""Quitting the console never ends in "unexpected ZeroDivisionError" (issue 13, item 4).

The cause: Textual's ``Timer`` divides by its delay when it starts late, and a 0 s timer
always does. The ZeroDivisionError ends the timer's task (its callback never runs) and is
raised again when the screen that owns the timer closes, at quit: ``tbx`` then said
"unexpected ZeroDivisionError: float division by zero" and exited 1. The Audit screen
asked for one whenever a chain check was overdue (``set_timer(max(0.0, wait))``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from textual.widgets import Static

from console import config
from console.tui.backend import Backend
from tests.support.tui import still_app

TUI = Path(__file__).resolve().parents[2] / "console" / "tui"


async def test_an_overdue_chain_check_runs_and_the_console_quits_clean(seeded: Backend,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("console.tui.screens.audit.FULL_EVERY", 0.0)  # every check is due at once
    app = still_app(seeded)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("6")
        for _ in range(3):
            await app.workers.wait_for_complete()
            await pilot.pause()
        with seeded.workspace.change() as change:  # the console hears of it: the screen re-reads
            change.record("test.note", "console:quit", detail={"n": 1})
        for _ in range(6):
            await app.workers.wait_for_complete()
            await pilot.pause(0.1)
        chain = str(app.screen.query_one("#chain", Static).render())
        await pilot.press("q")
    # Leaving run_test raises what the app met on the way out (the timer's ZeroDivisionError).
    assert "intact" in chain and "5 records" in chain, chain


def _positive_number(node: ast.expr, constants: dict[str, float]) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int | float) and node.value > 0
    if isinstance(node, ast.Name):
        return constants.get(node.id, 0) > 0
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div | ast.Mult):
        return _positive_number(node.left, constants) and _positive_number(node.right, constants)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "max":
        return any(_positive_number(arg, constants) for arg in node.args)
    if isinstance(node, ast.Attribute):
        return _setting_is_positive(node.attr)
    return False


def _setting_is_positive(name: str) -> bool:
    """A setting (``settings.tui.refresh_seconds``) whose validation keeps it above 0."""
    for model in vars(config).values():
        fields = getattr(model, "model_fields", None)
        if not isinstance(fields, dict) or name not in fields:
            continue
        for bound in fields[name].metadata:  # annotated_types.Gt / Ge
            if getattr(bound, "gt", None) is not None and bound.gt >= 0:
                return True
            if getattr(bound, "ge", None) is not None and bound.ge > 0:
                return True
    return False


def test_every_timer_of_the_console_waits_more_than_zero() -> None:
    """Every ``set_timer``/``set_interval`` delay is a positive number, a module constant that
    is one, ``max()`` with one, or a setting validated above 0."""
    bad = []
    for path in sorted(TUI.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                     for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)
                     and isinstance(n.value.value, int | float)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("set_timer", "set_interval") and node.args
                    and not _positive_number(node.args[0], constants)):
                bad.append(f"{path.relative_to(TUI)}:{node.lineno}: {ast.unparse(node.args[0])}")
    assert bad == [], "delays that may be 0 (Textual's Timer divides by them)"
