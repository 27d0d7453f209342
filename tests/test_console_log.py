"""Where ``tbx`` logs: the console to a file it names, commands to stderr, and a failure
nobody expected leaves its traceback in that file (issue 13, items 4 and 11)."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from console.cli import cli
from console.logsetup import log_file, log_to_file, record_crash
from console.paths import Paths, resolve_paths

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The root logger as it was: the tests below reconfigure it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


def test_the_console_log_is_a_private_file_and_takes_the_terminal_handlers(
        tmp_path: Path, root_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    paths = resolve_paths({"TBX_HOME": str(tmp_path / "home")})
    root = logging.getLogger()
    root.addHandler(logging.StreamHandler(sys.stderr))
    path = log_to_file(paths, debug=True)
    assert path == log_file(paths) == paths.state_dir / "logs" / "console.log"
    logging.getLogger("console.test").debug("a line for the file")
    import warnings

    warnings.warn("a warning for the file", UserWarning, stacklevel=1)
    for handler in root.handlers:
        handler.flush()
    text = path.read_text()
    assert "DEBUG console.test: a line for the file" in text and "a warning for the file" in text
    assert "a line for the file" not in capsys.readouterr().err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.log_dir.stat().st_mode) == 0o700


def test_a_crash_is_recorded_with_its_traceback(tmp_path: Path) -> None:
    paths = resolve_paths({"TBX_HOME": str(tmp_path / "home")})
    try:
        1.0 / 0  # noqa: B018 - the failure under test
    except ZeroDivisionError as exc:
        where = record_crash(paths, "tbx", exc)
    assert where == log_file(paths)
    text = where.read_text()
    assert "ERROR tbx: tbx failed unexpectedly:\nTraceback (most recent call last):" in text
    assert text.rstrip().endswith("ZeroDivisionError: float division by zero")


def test_an_unexpected_failure_at_quit_names_its_traceback(tbx_home: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    """The console's quit once ended in one line and exit 1, its traceback lost."""

    def quit_badly(debug_log: Path | None = None) -> None:
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr("console.tui.app.run_console", quit_badly)
    # pytest keeps its logging (raising=False: the test runs, and fails, on a tbx without log_to_file)
    monkeypatch.setattr("console.cli.log_to_file", lambda paths, debug: log_file(paths), raising=False)
    result = CliRunner().invoke(cli, [], env={"TBX_HOME": os.environ["TBX_HOME"]}, prog_name="tbx")
    path = log_file(tbx_home)
    assert result.exit_code == 1
    assert result.stderr == (f"error: unexpected ZeroDivisionError: float division by zero "
                             f"(its traceback is in {path})\n")
    text = path.read_text()
    assert "tbx failed unexpectedly:\nTraceback" in text and "in quit_badly" in text


def test_a_command_with_debug_logs_to_stderr(tmp_path: Path) -> None:
    env = {**os.environ, "TBX_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "console", "--debug", "doctor"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert "DEBUG " in result.stderr
    assert not log_file(resolve_paths(env)).exists()


# -- the real console in a terminal ----------------------------------------------------------


class Tmux:
    """One tmux session running a command; every byte it draws is kept (``pipe-pane``)."""

    def __init__(self, name: str, raw: Path) -> None:
        self.name, self.raw = name, raw

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True, timeout=10).stdout

    def start(self, command: str, size: tuple[int, int] = (120, 36)) -> None:
        self.run("new-session", "-d", "-s", self.name, "-x", str(size[0]), "-y", str(size[1]))
        self.run("pipe-pane", "-t", self.name, "-o", f"cat >> {self.raw}")
        self.run("send-keys", "-t", self.name, command, "Enter")

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name)

    def wait_for(self, text: str, within: float = 30.0) -> str:
        deadline = time.monotonic() + within
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the screen:\n{screen}")
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True, timeout=10)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_debug_lines_go_to_the_file_the_console_names_not_over_the_screen(tmp_path: Path) -> None:
    home = Path(tempfile.mkdtemp(prefix="tbx", dir="/tmp"))  # short: the notification shows it on one line
    term = Tmux(f"tbx-log-{os.getpid()}", tmp_path / "raw")
    done = tmp_path / "exit"
    term.start(f"cd {REPO} && TBX_HOME={home} PYTHONPATH={REPO} {sys.executable} -m console --debug; "
               f"echo $? > {done}")
    try:
        path = log_file(resolve_paths({"TBX_HOME": str(home)}))
        screen = term.wait_for(f"debug log: {path}")
        assert "DEBUG" not in screen
        term.run("send-keys", "-t", term.name, "C-q")
        deadline = time.monotonic() + 20
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert done.read_text().strip() == "0"
        logged = path.read_text()
    finally:
        term.close()
        shutil.rmtree(home, ignore_errors=True)
    drawn = (tmp_path / "raw").read_bytes()
    assert b"DEBUG" not in drawn, "a log line was written to the terminal"
    assert "DEBUG asyncio: Using selector" in logged


def test_a_console_that_stopped_on_an_error_exits_1_and_keeps_the_traceback(
        tbx_home: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    """Textual shows the traceback of an error inside the app and ends as if all went well:
    ``tbx`` used to exit 0 after it."""
    from textual.app import App

    class Crashing(App[None]):
        debug_log = None

        def on_mount(self) -> None:
            raise LookupError("no screen named 'elsewhere'")

        def run(self, **_: object) -> None:  # type: ignore[override]
            super().run(headless=True)

    monkeypatch.setattr("console.tui.app.ConsoleApp", Crashing)
    monkeypatch.setattr("console.cli.log_to_file", lambda paths, debug: log_file(paths), raising=False)
    result = CliRunner().invoke(cli, [], env={"TBX_HOME": os.environ["TBX_HOME"]}, prog_name="tbx")
    path = log_file(tbx_home)
    assert result.exit_code == 1
    assert result.stderr.endswith(f"error: the console stopped on LookupError: no screen named 'elsewhere' "
                                  f"(its traceback is in {path})\n")
    assert "the console failed unexpectedly:\nTraceback" in path.read_text()


def test_a_state_folder_that_cannot_be_made_leaves_the_console_unlogged_not_drawn_over(
        tmp_path: Path, root_logging: None) -> None:
    blocker = tmp_path / "home"
    blocker.write_text("a file where the home folder should be")
    root = logging.getLogger()
    root.addHandler(logging.StreamHandler(sys.stderr))
    assert log_to_file(resolve_paths({"TBX_HOME": str(blocker)}), debug=False) is None
    assert not [h for h in root.handlers if isinstance(h, logging.StreamHandler) and h.stream is sys.stderr]
