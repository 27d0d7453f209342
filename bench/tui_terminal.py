"""The console in a real terminal: the real `tbx` process in tmux at 120x36, this checkout
against a baseline commit, rounds alternating between the two.

The vault: 100 agents, 20 servers with 100 tools each (2,000 tools, ~10,000 grants) in
the toolbox ``local``, and 5,000 audit records. The servers are vault records only: their
containers do not exist, so the engine is asked about them and answers "missing".

Each round starts `tbx` (vault closed, its key in a keyring file), waits for the first
paint (the Toolboxes table with its row), presses a digit at once (the first key, a
different screen each round), visits every other screen for the first time, then goes
round all eight screens three times; each key after the first comes ``think`` seconds
(1 s: a person reading the screen; 0: back to back) after the previous one was answered.
"Switch" is the key until a frame whose header shows the new screen; "rows" until that
frame also shows the screen's data.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.baseline import worktree
from bench.terminal import Tmux, active_tab, main_thread_times

REPO = Path(__file__).resolve().parents[1]
SIZE = (120, 36)
DEFAULT_BASELINE = "1f4da88"
REVISIT_PASSES = 3

ROWS: dict[str, re.Pattern[str]] = {
    "1": re.compile(r"(?m)^ local\s+local\s"),
    "2": re.compile(r"srv-000 "),
    "3": re.compile(r"srv-000/tool_00_read"),
    "4": re.compile(r"agent-000"),
    "5": re.compile(r"agent-000"),
    "6": re.compile(r"tool\.call"),
    "7": re.compile(r"srv-000/tool_00_read"),
    "8": re.compile(r"app registrations"),
}
"""What each screen (by its digit) shows once its data is on screen, in the bench vault."""
NAMES = {"1": "Toolboxes", "2": "Servers", "3": "Tools", "4": "Grants", "5": "Agents", "6": "Audit", "7": "Try",
         "8": "Connections"}


def seeded_home(root: Path) -> Path:
    """A home with the benchmark's vault, its key in a file keyring `tbx` processes can read."""
    import keyring

    from console.audit import AuditEvent
    from console.tui.backend import Backend
    from tests.support.bigvault import generate_big_vault
    from tests.support.keyrings import FileKeyring
    from tests.support.tui import test_paths

    home = root / "home"
    os.environ["TBX_TEST_KEYRING_FILE"] = str(root / "keyring.json")
    previous = keyring.get_keyring()
    keyring.set_keyring(FileKeyring())
    try:
        backend = Backend(test_paths(home))
        backend.paths.ensure()
        backend.create_vault(None)
        ws = backend.workspace
        generate_big_vault(ws, 100, 2000, tools_per_server=100)
        agents = sorted(a.name for a in ws.repos.agents)
        events = [AuditEvent(f"agent:{agents[n % 100]}", "tool.call", f"tool:local/srv-{n % 20:03d}/tool_{n % 100:02d}",
                             "allow" if n % 7 else "deny", agents[n % 100], {"latency_ms": 1.5})
                  for n in range(5000)]
        for start in range(0, len(events), 500):
            ws.log_events(events[start:start + 500])
    finally:
        keyring.set_keyring(previous)
    return home


@dataclass
class Side:
    label: str
    code: Path
    home: Path
    keyring_file: Path
    times: dict[str, list[float]] = field(default_factory=dict)
    """Metric -> seconds, one per sample (see ``METRICS``)."""
    per_screen: dict[str, list[float]] = field(default_factory=dict)
    """Digit -> first-visit times until its rows showed."""
    failures: list[str] = field(default_factory=list)

    def add(self, metric: str, *samples: float) -> None:
        self.times.setdefault(metric, []).extend(samples)

    @property
    def env(self) -> dict[str, str]:
        # Bytecode as an installed `tbx` has it (the unrecorded first round writes it): this
        # machine's environment sets PYTHONDONTWRITEBYTECODE, which made every start compile
        # every module (~0.1 s). Each side keeps its own cache, beside its home.
        return {"TBX_HOME": str(self.home), "TBX_TEST_KEYRING_FILE": str(self.keyring_file),
                "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.FileKeyring", "PYTHONPATH": str(self.code),
                "PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(self.home.parent / f"pycache-{self.label}")}


def showing(digit: str, rows: bool) -> Callable[[str, str], bool]:
    """A frame drawn by screen ``digit`` (and, with ``rows``, showing its data)."""
    def seen(plain: str, styled: str) -> bool:
        return active_tab(styled) == digit and (not rows or ROWS[digit].search(plain) is not None)

    return seen


@dataclass(frozen=True)
class Answer:
    switch: float
    """Key -> a frame drawn by the new screen."""
    rows: float
    """Key -> that screen showing its data."""
    cpu: float
    """Of that, seconds the console's main thread ran..."""
    queued: float
    """...and seconds it waited for a CPU (other processes' load)."""


def press(tmux: Tmux, session: str, pid: int, digit: str, think: float) -> Answer:
    """``think`` seconds after the last answer (a person reading it), press ``digit``."""
    time.sleep(think)
    cpu, queued = main_thread_times(pid)
    sent = tmux.keys(session, digit)
    switched = tmux.wait(session, showing(digit, rows=False))
    rows = tmux.wait(session, showing(digit, rows=True))
    if switched is None or rows is None:
        raise TimeoutError(f"screen {digit} ({NAMES[digit]}) not shown within 10 s")
    cpu_after, queued_after = main_thread_times(pid)
    return Answer(switched - sent, rows - sent, cpu_after - cpu, queued_after - queued)


def run_round(tmux: Tmux, side: Side, round_: int, record: bool = True, nice: int = 0, think: float = 0.0) -> None:
    """One start of `tbx` and every screen visited; times added to ``side`` if ``record``."""
    state = side.home / "state"
    state.mkdir(parents=True, exist_ok=True)
    (state / "console.json").write_text(json.dumps({"screen": "toolboxes"}))  # the last screen is remembered
    session = f"{side.label}-{round_}"
    command = f"exec nice -n {nice} {sys.executable} -m console" if nice else f"exec {sys.executable} -m console"
    started = tmux.start(session, command, side.code, side.env)
    try:
        pid = tmux.pid(session)
        painted = tmux.wait(session, showing("1", rows=True), timeout=20)
        if painted is None:
            raise TimeoutError("no first paint within 20 s")
        others = [str(d) for d in range(2, 9)]
        order = others[round_ % 7:] + others[:round_ % 7]
        first = [(d, press(tmux, session, pid, d, think if i else 0.0)) for i, d in enumerate(order)]
        again = [press(tmux, session, pid, d, think) for _ in range(REVISIT_PASSES) for d in "12345678"]
        tmux.keys(session, "q")
        deadline = time.perf_counter() + 10
        while tmux.alive(session) and time.perf_counter() < deadline:
            time.sleep(0.05)
    except TimeoutError as exc:
        side.failures.append(f"round {round_}: {exc}")
        return
    finally:
        if tmux.alive(session):
            tmux.stop(session)
    if not record:
        return
    side.add("paint", painted - started)
    for prefix, answers in (("first_key", [first[0][1]]), ("first", [a for _d, a in first]), ("again", again)):
        for name in ("switch", "rows", "cpu", "queued"):
            side.add(f"{prefix}_{name}", *(getattr(a, name) for a in answers))
    for digit, answer in first:
        side.per_screen.setdefault(digit, []).append(answer.rows)


def pct(samples: list[float], q: float) -> str:
    if not samples:
        return "-"
    return f"{sorted(samples)[min(len(samples) - 1, int(q * len(samples)))] * 1000:.0f}"


def cell(samples: list[float]) -> str:
    return f"{pct(samples, .5):>6} {pct(samples, .95):>6}"


def report(sides: list[Side], baseline: str, rounds: int, load: tuple[float, float], nice: int,
           think: float) -> None:
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} at the start, {load[1]:.1f} at the end"
          + (f"; `tbx` ran at nice {nice}, ahead of the machine's other work" if nice else ""))
    print(f"in a real terminal: `tbx` in tmux {SIZE[0]}x{SIZE[1]}; 100 agents, 20 servers (vault records, no "
          f"containers), 2,000 tools, 5,000 audit records; before = {baseline}, after = this checkout; "
          f"{rounds} alternating rounds; the first key at once after the first paint, the others {think:g} s "
          f"after the last answer; ms, p50 and p95")
    print(f"  {'metric':<46}{'before':>13}   {'after':>13}   target")
    rows = [("first paint: start -> Toolboxes with its row", "paint", "p50 < 1000")]
    for prefix, what, target in (("first_key", "first key after first paint", "< 100"),
                                 ("first", "first visit of a screen", "p95 < 100"),
                                 ("again", f"revisit ({REVISIT_PASSES} passes over 8)", "p95 < 100")):
        rows += [(f"{what} -> screen drawn", f"{prefix}_switch", target),
                 ("  ... -> with its rows", f"{prefix}_rows", target),
                 ("  main thread on a CPU meanwhile", f"{prefix}_cpu", ""),
                 ("  main thread waiting for a CPU (load)", f"{prefix}_queued", "")]
    for label, metric, target in rows:
        print(f"  {label:<46}{cell(sides[0].times.get(metric, []))}   {cell(sides[1].times.get(metric, []))}   "
              f"{target}")
    print("  first visit -> rows, per screen (p50 p95):")
    for digit in sorted(NAMES):
        if digit == "1":
            continue
        print(f"    {digit} {NAMES[digit]:<42}{cell(sides[0].per_screen.get(digit, []))}   "
              f"{cell(sides[1].per_screen.get(digit, []))}")
    for side in sides:
        for failure in side.failures:
            print(f"  {side.label}: FAILED {failure}")


def run(rounds: int, baseline: str, nice: int = 0, think: float = 1.0) -> None:
    if shutil.which("tmux") is None:
        print("in a real terminal: skipped, tmux is not installed")
        return
    root = Path(tempfile.mkdtemp(prefix="tbx-bench-term-"))
    seeded = seeded_home(root)
    sides = []
    for label, code in (("before", worktree(baseline)), ("after", REPO)):
        home = root / label
        shutil.copytree(seeded, home)
        sides.append(Side(label, code, home, root / "keyring.json"))
    env = {k: v for k, v in os.environ.items() if k not in ("TBX_PASSPHRASE", "TMUX", "TMUX_PANE")}
    tmux = Tmux(SIZE, env)
    load = os.getloadavg()[0]
    try:
        for side in sides:  # compiled bytecode and a warm page cache for both
            run_round(tmux, side, -1, record=False, nice=nice, think=think)
        for round_ in range(rounds):
            for side in sides:
                run_round(tmux, side, round_, nice=nice, think=think)
    finally:
        tmux.close()
        shutil.rmtree(root, ignore_errors=True)
    report(sides, baseline, rounds, (load, os.getloadavg()[0]), nice, think)
