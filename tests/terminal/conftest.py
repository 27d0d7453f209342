"""The terminal journeys: the real `tbx` in a real pty at each common terminal size.

A journey takes a minute or two (a first run that starts a server in Docker, a gateway, real
calls), so each size runs once per test session and every check reads its record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.terminal.journey import Journey

SIZES = ((80, 24), (120, 36), (200, 60))


@dataclass
class Outcome:
    journey: Journey
    error: BaseException | None
    """Why the journey stopped before its end (None: it went all the way)."""


_RUNS: dict[tuple[int, int], Outcome] = {}


@pytest.fixture(scope="session")
def journey_at(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Callable[[int, int], Outcome]:  # noqa: ANN001
    """The journey at a size, run the first time a test asks for it."""

    def run(cols: int, rows: int) -> Outcome:
        if (cols, rows) not in _RUNS:
            journey = Journey(tmp_path_factory.mktemp(f"journey-{cols}x{rows}") / "home", cols, rows)
            try:
                journey.run()
                error = None
            except Exception as exc:  # noqa: BLE001 - kept, and shown by every check it cut short
                error = exc
            _RUNS[(cols, rows)] = Outcome(journey, error)
        return _RUNS[(cols, rows)]

    return run
