"""Every check of the terminal journey (tests/terminal/journey.py), at every size.

Each test names one thing a person meets in a real terminal and reads it from the journey
at that size; the failure shows the screen as it was. The journey itself runs once per size.
"""

from __future__ import annotations

import pytest

from tests.terminal.conftest import SIZES

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CHECKS: dict[str, str] = {
    "setup_whole": "the first-run dialog, its title and its Create button, fit the screen",
    "first_run_enter": "Enter in the passphrase confirmation creates the vault",
    "token_dialog_whole": "the new-token dialog shows its Done button",
    "token_show_enter": "Enter on Show shows the token",
    "token_done_enter": "Enter on Done closes the token dialog and the console goes on",
    "tabs_whole": "every tab label is whole (in full or abbreviated, never cut at the edge)",
    "gateway_status_shown": "the top line says whether the gateway is on",
    "footer_help_quit": "the footer shows '? Help' and 'q Quit' on every screen",
    "servers_columns": "Servers shows SERVER, STATE, HEALTH, MEMORY and TOOLS whole",
    "add_form_follows_search": "the add-server form is the entry the catalog search leaves",
    "focused_input_visible": "what is typed in a focused field is visible",
    "try_run_shown": "Try shows its Run button",
    "try_argument_visible": "Try shows the argument typed, whole",
    "try_enter_runs": "Enter on the last field of Try runs the call",
    "try_calls": "Try calls as the owner and, through the gateway, as an agent",
    "audit_columns": "Audit shows SEQ, ACTOR, ACTION and TARGET whole",
    "names_grow": "where there is room, name columns grow instead of cutting names",
    "help_whole": "Help shows the binding-id column whole",
    "help_names": "Help names keys as a person presses them, not by internal names",
    "clean_exit": "every quit ends with status 0 and no traceback or unexpected error",
    "passphrase_never_drawn": "the passphrase is never drawn on the screen",
}

# Temporary: checks that fail because of a defect another part of issue 13 is fixing.
# Each goes as soon as its fix lands (strict: a check that passes fails its xfail).
XFAIL: dict[tuple[str, str], str] = {}


def params() -> list[object]:
    found = []
    for cols, rows in SIZES:
        size = f"{cols}x{rows}"
        for check in CHECKS:
            if check == "names_grow" and cols < 120:
                continue  # at 80 columns a long name may be cut: there is no room to grow into
            reason = XFAIL.get((check, size)) or XFAIL.get((check, "*"))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            found.append(pytest.param(cols, rows, check, id=f"{size}-{check}", marks=marks))
    return found


@pytest.mark.parametrize(("cols", "rows", "check"), params())
def test_terminal_journey(journey_at, cols: int, rows: int, check: str) -> None:  # noqa: ANN001
    outcome = journey_at(cols, rows)
    journey = outcome.journey
    problems = journey.checks.get(check)
    if problems is None:
        raise AssertionError(f"the journey at {journey.size} stopped before it could check that "
                             f"{CHECKS[check]}: {outcome.error!r}\n{journey.screens.get('last', '')}")
    assert not problems, f"at {journey.size}, expected: {CHECKS[check]}\n" + "\n".join(problems)


@pytest.mark.parametrize(("cols", "rows"), SIZES, ids=[f"{c}x{r}" for c, r in SIZES])
def test_terminal_journey_goes_to_its_end(journey_at, cols: int, rows: int) -> None:  # noqa: ANN001
    """First run, every screen's verbs, quit and restart, all by keyboard, without getting stuck."""
    outcome = journey_at(cols, rows)
    assert outcome.error is None, (f"the journey at {cols}x{rows} stopped: {outcome.error}\n"
                                   f"{outcome.journey.screens.get('last', '')}")
    assert [phase for phase, _status in outcome.journey.exits] == ["first run", "restart"]
