"""One user's first hour with the real `tbx`, in a real terminal of a given size.

The journey does what a person does, with the keys a person presses: it reads the screen
to know where it is and tabs to a button before pressing Enter on it. Where the console
demands a key (Enter in a form submits it, Done closes the token dialog) the journey
presses that key and records whether it worked; when it did not, it goes on the way a
person would (Tab to the button) so that one defect does not hide the rest. Each such
expectation is a named check; tests/terminal/test_journey.py turns every check into a test.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import docker

from console.tui.screens import SCREENS
from tests.conftest import CANARY
from tests.support.terminal import Terminal, tbx_argv, terminal_env

PASSPHRASE = CANARY
"""The vault's passphrase is the canary: it must never be drawn on the screen."""
AGENT = "scout"
SERVER = "clock"
CALLER = "owner (direct"
"""The caller list as it starts: the owner, calling directly."""
TABS = [f"{spec.key} {spec.title}" for spec in SCREENS]
SERVER_COLUMNS = ("SERVER", "STATE", "HEALTH", "MEMORY", "TOOLS")
AUDIT_COLUMNS = ("SEQ", "ACTOR", "ACTION", "TARGET")
HELP_NAMES = re.compile(r"left_square_bracket|right_square_bracket|question_mark|help_quit|\bslash\b")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tab_whole(top: str, tab: str, cols: int) -> bool:
    """Whether the tab bar shows ``tab`` ("8 Connections") whole: in full, or abbreviated
    ("8 Conns") — but never cut off at the screen's edge ("8 Connecti")."""
    key, title = tab.split(" ", 1)
    found = re.search(rf"(?:^|\s){key} (\S+)", top)
    if found is None:
        return False
    word = found.group(1)
    return word == title or (found.end(1) < cols and not word.endswith("…"))


@dataclass
class Journey:
    home: Path
    cols: int
    rows: int
    checks: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    """Check name -> what went wrong (empty: the check held)."""
    exits: list[tuple[str, int]] = field(default_factory=list)
    screens: dict[str, str] = field(default_factory=dict)
    """The last screen seen per step, for the reader of a failure."""
    t: Terminal | None = None
    port: int = field(default_factory=free_port)
    took: dict[str, float] = field(default_factory=dict)
    """Seconds per phase, to keep the journey quick."""
    unfocused: dict[str, str | None] = field(default_factory=dict)
    """Background colours of widgets without focus, by the text they show."""

    @property
    def size(self) -> str:
        return f"{self.cols}x{self.rows}"

    # -- recording -------------------------------------------------------------------------

    def check(self, name: str, ok: object, problem: str) -> bool:
        self.checks.setdefault(name, [])
        if not ok:
            self.checks[name].append(f"{problem}\n{self.term.dump()}")
        return bool(ok)

    @property
    def term(self) -> Terminal:
        assert self.t is not None, "no console running"
        return self.t

    def env(self) -> dict[str, str]:
        # No usable OS keyring: the vault is locked by a passphrase typed at first run and at
        # every start, as on a server or in a container.
        return terminal_env({"TBX_HOME": str(self.home), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})

    def start(self) -> Terminal:
        config = self.home / "config" / "config.toml"
        if not config.exists():  # the gateway on a port of its own, whatever else runs here
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(f"[gateway]\nport = {self.port}\n")
        self.t = Terminal(tbx_argv(), self.env(), self.cols, self.rows)
        return self.t

    def finish(self, phase: str) -> None:
        """The console ended: no traceback, exit status 0."""
        t = self.term
        status = t.wait_exit()
        self.exits.append((phase, status))
        transcript = t.transcript.decode("utf-8", "replace")
        self.check("clean_exit", status == 0 and not re.search(r"Traceback|Error: unexpected", transcript,
                                                               flags=re.IGNORECASE),
                   f"{phase}: exit status {status}\n{t.tail()}")
        self.check("passphrase_never_drawn", PASSPHRASE not in transcript, f"{phase}: the passphrase was drawn")
        self.t = None

    # -- what every main screen must show whole ----------------------------------------------

    def frame(self, where: str) -> None:
        """The tab bar, the gateway status and the footer's Help and Quit, whole on the screen."""
        self.screens[where] = self.term.dump()
        lines = self.term.lines()
        top, bottom = lines[0], lines[-1]
        cut = [tab for tab in TABS if not tab_whole(top, tab, self.cols)]
        self.check("tabs_whole", not cut, f"{where}: tab labels cut or missing: {cut}")
        self.check("gateway_status_shown", "gateway" in top, f"{where}: no gateway status on the top line")
        missing = [key for key in ("? Help", "q Quit") if key not in bottom]
        self.check("footer_help_quit", not missing, f"{where}: footer lacks {missing}")

    def goto(self, key: str, marker: str, timeout: float = 15.0) -> str:
        """Press a digit and wait for its screen (the current tab and something only it shows)."""
        tab = TABS[int(key) - 1]
        self.term.press(key)
        return self.term.wait(lambda screen: marker in screen and self.current_tab().startswith(f"{key} "),
                              f"screen {tab} showing {marker!r}", timeout)

    def shows(self, pattern: str, timeout: float = 3.0) -> bool:
        """Whether the screen comes to show ``pattern`` (what was just typed, say) within a moment."""
        try:
            self.term.wait(lambda screen: re.search(pattern, screen), f"/{pattern}/", timeout)
        except AssertionError:
            return False
        return True

    def current_tab(self) -> str:
        runs = [r for r in self.term.styled(0, bold=True) if r[:1].isdigit()]
        return runs[0] if runs else ""

    def press_button(self, label: str, tabs: int = 12) -> None:
        """Tab to the button labelled ``label``, as a person does, and press Enter on it. After
        each Tab it waits to see the focus move: a busy console may draw a moment late."""
        t = self.term
        with contextlib.suppress(AssertionError):  # a dialog just opened: its button takes the focus
            t.wait(lambda _s: t.focused_button(), "a focused button", timeout=2)
        for _ in range(tabs):
            focused = t.focused_button() or ""
            # A label cut at the screen's edge is still the button a person means.
            if label in focused or (len(focused) >= 4 and label.startswith(focused)):
                t.press("enter")
                return
            t.press("tab")
            with contextlib.suppress(AssertionError):
                t.wait(lambda _s, before=focused: (t.focused_button() or "") != before, "the focus to move", 5)
        raise AssertionError(f"could not tab to the button {label!r}\n{t.dump()}")

    # -- the journey -----------------------------------------------------------------------

    def run(self) -> None:
        phases = (self.first_run, self.servers, self.tools, self.agents, self.grants, self.gateway, self.try_tool,
                  self.audit, self.connections, self.help, self.quit, self.restart)
        try:
            for phase in phases:
                started = time.monotonic()
                phase()
                self.took[phase.__name__] = round(time.monotonic() - started, 1)
        finally:
            if self.t is not None:
                self.screens["last"] = self.t.dump()
                self.t.close()
            self.cleanup()

    def first_run(self) -> None:
        t = self.start()
        t.wait_for("passphrase I type", timeout=30)
        self.check("setup_whole", self.shows(r"Welcome to Toolbox Console(.|\n)*\bCreate the vault\b"),
                   "the first-run dialog is cut: its title or its button is not whole")
        t.press_and_settle("tab")
        t.type(PASSPHRASE)
        t.press_and_settle("tab")
        t.type(PASSPHRASE)
        t.press("enter")  # Enter in the confirmation field creates the vault, as a form does
        try:
            t.wait_for("The vault is ready", timeout=5)
            self.check("first_run_enter", True, "")
        except AssertionError:
            self.check("first_run_enter", False, "Enter in the passphrase confirmation did nothing")
            self.press_button("Create the vault")
            t.wait_for("The vault is ready", timeout=30)
        self.screens["vault ready"] = t.dump()
        self.press_button("Create them")
        t.wait_for("Token of agent demo", timeout=120)
        self.token_dialog("starter")
        self.goto("1", "KIND")
        self.frame("1 Toolboxes")

    def token_dialog(self, where: str) -> None:
        """The new token is masked, can be shown, and Done (Enter on it) closes the dialog."""
        t = self.term
        try:
            t.wait(lambda s: re.search(r"\bDone\b", s), "the Done button", timeout=5)
            self.check("token_dialog_whole", True, "")
        except AssertionError:
            self.check("token_dialog_whole", False, f"{where}: the token dialog's Done button is not shown")
        before = t.text()
        self.press_button("Show")
        try:
            t.wait(lambda screen: screen != before and re.search(r"tbx_[A-Za-z0-9_-]{24,}", screen),
                   "the token shown", timeout=3)
            self.check("token_show_enter", True, "")
        except AssertionError:
            self.check("token_show_enter", False, f"{where}: Enter on Show did not show the token")
        self.press_button("Done")
        try:
            t.wait(lambda screen: "Done" not in screen and self.current_tab() != "", "the dialog to close", timeout=5)
            time.sleep(0.5)  # a second close would crash now
            t.fail_on_traceback()
            self.check("token_done_enter", t.child.isalive(), f"{where}: Done ended the console")
        except AssertionError as exc:
            self.check("token_done_enter", False, f"{where}: Enter on Done: {exc}")
            self.recover(where)

    def recover(self, where: str) -> None:
        """The console died or hung at a recorded defect: start it again and go on."""
        t = self.term
        self.screens[f"crashed at {where}"] = t.dump() + "\n" + t.tail()
        t.close()
        self.exits.append((f"crashed at {where}", -1))
        self.unlock()

    def unlock(self) -> Terminal:
        t = self.start()
        t.wait_for("Open the vault", timeout=30)
        t.type(PASSPHRASE)
        t.press("enter")
        t.wait(lambda _screen: self.current_tab() != "", "the console after unlocking", timeout=60)
        return t

    def servers(self) -> None:
        t = self.term
        self.goto("2", "toolbox local")
        t.wait(lambda s: re.search(r"time\s+running\s+healthy", s), "time running healthy", timeout=60)
        self.frame("2 Servers")
        header = t.lines()[t.row_of("SERVER")]
        cut = [c for c in SERVER_COLUMNS if not re.search(rf"\b{c}\b", header)]
        self.check("servers_columns", not cut, f"Servers: columns cut or missing: {cut}")
        # Add a second instance of time under another name: the name typed must stay visible.
        t.press("a")
        t.wait_for("Add a server to toolbox local")
        t.type("time")
        follows = self.shows("Time — needs", timeout=5)
        self.check("add_form_follows_search", follows, "Add server: the form is not the one entry the search left")
        if not follows:  # moving the highlight away and back brings the right form
            t.press("down", "up")
            t.wait_for("Time — needs")
        t.press_and_settle("enter")  # on to the name field, its text selected: typing replaces it
        t.type(SERVER)
        self.check("focused_input_visible", self.shows(rf"\b{SERVER}\b"), f"the name typed ({SERVER}) is not visible")
        t.press("enter")
        t.wait_gone("Add a server to toolbox local")
        t.wait(lambda s: re.search(rf"{SERVER}\s+running\s+healthy", s), f"{SERVER} running healthy", timeout=90)
        # Stop it (asks first; Enter on the confirm button) and start it again.
        t.press("home")
        t.press(*["down"] * self._row_index(SERVER))
        t.press("s")
        t.wait_for("Agents lose its tools")
        self.press_button("Stop")
        t.wait(lambda s: re.search(rf"{SERVER}\s+(exited|stopped)", s), f"{SERVER} stopped", timeout=30)
        t.press("s")
        t.wait(lambda s: re.search(rf"{SERVER}\s+running\s+healthy", s), f"{SERVER} running again", timeout=60)
        t.press("l")
        t.wait_for(f"local/{SERVER}")
        t.press("escape")

    def _row_index(self, name: str) -> int:
        """Where ``name`` sits among the server rows (sorted by name)."""
        lines = self.term.lines()
        top = self.term.row_of("SERVER") + 1
        names = [line.split()[0] for line in lines[top:top + 20] if line.strip() and line.split()[0].isidentifier()]
        return names.index(name) if name in names else 0

    def tools(self) -> None:
        t = self.term
        self.goto("3", f"{SERVER}/")
        self.frame("3 Tools")
        tool = f"{SERVER}/get_current_time"
        t.wait(lambda s: re.search(rf"{tool}\b.*pending", s), f"{tool} pending approval")
        row = t.row_of(tool) - t.row_of("ITEM") - 1
        t.press("home", *["down"] * row)
        t.press("a")
        t.wait_for(f"Approve local/{tool}?")
        self.press_button("Approve")
        t.wait(lambda s: re.search(rf"{tool}\b.*approved", s), f"{tool} approved")

    def agents(self) -> None:
        t = self.term
        self.goto("5", "TOKEN")
        self.frame("5 Agents")
        t.press("a")
        t.wait_for("Add an agent")
        t.type(AGENT)
        self.check("focused_input_visible", self.shows(rf"\b{AGENT}\b"), f"the agent name typed ({AGENT}) is not visible")
        t.press("enter")
        t.wait_for(f"Token for {AGENT}", timeout=15)
        self.token_dialog("new agent")
        self.goto("5", "TOKEN")
        t.wait(lambda s: re.search(rf"\b{AGENT}\s+enabled", s), f"{AGENT} listed")

    def grants(self) -> None:
        """Open toolbox local to scout, then grant it clock/get_current_time: space on each cell."""
        t = self.term
        self.goto("4", "agents")
        self.frame("4 Grants")
        t.press("home")
        self.walk_to(lambda cell: cell.startswith(f"{AGENT} ") and "toolbox local" in cell, "right",
                     f"{AGENT}'s toolbox cell")
        t.press("space")
        t.wait(lambda _s: f"{AGENT} has access to toolbox local" in self.cell_line(), f"{AGENT}'s toolbox access")
        # Down to the tool's row, counted on the screen (a toast may cover the cell line's end).
        lines = t.lines()
        top = t.row_of("toolbox local: access")
        server = t.row_of(f"{SERVER}/*")
        row = next(i for i in range(server + 1, len(lines)) if "get_current_time" in lines[i])
        t.press("home", *["down"] * (row - top))
        t.press("space")
        target = f"local/{SERVER}/get_current_time"
        t.wait(lambda _s: self.cell_line().startswith(f"{AGENT} holds {target}"), f"{AGENT} granted {target}",
               timeout=15)

    def cell_line(self) -> str:
        """The line under the matrix that says what the cell under the cursor means."""
        lines = self.term.lines()
        legend = next((i for i, line in enumerate(lines) if "✓ granted" in line), len(lines) - 2)
        return lines[legend - 1].strip()

    def walk_to(self, found, key: str, what: str, steps: int = 12) -> None:  # noqa: ANN001
        for _ in range(steps):
            if found(self.cell_line()):
                return
            self.term.press(key)
            time.sleep(0.15)
        raise AssertionError(f"could not reach {what}\n{self.term.dump()}")

    def gateway(self) -> None:
        """g on Toolboxes starts the gateway; the status says where it serves."""
        t = self.term
        self.goto("1", "KIND")
        t.press("g")
        t.wait(lambda s: f"127.0.0.1:{self.port}/mcp" in s, "the gateway serving", timeout=60)
        self.check("gateway_status_shown", self.shows(r"\A.*gateway (on|127\.0\.0\.1:\d+)", timeout=10),
                   "the top line does not say the gateway is on")
        self.frame("1 Toolboxes, gateway running")

    def try_tool(self) -> None:
        """Call time/get_current_time as the owner, then clock's as scout through the gateway:
        Enter on the tool, type the argument, Enter on the last field runs it."""
        t = self.term
        self.goto("7", "TOOL")
        self.unfocused[CALLER] = t.background(CALLER)  # the tool list has the focus
        self.frame("7 Try")
        self.check("try_run_shown", any(re.search(r"\bRun\b", line) for line in t.lines()[:-1]),
                   "Try: the Run button is not shown")
        self.call("time/get_current_time", "Europe/Paris", caller=None)
        self.call(f"{SERVER}/get_current_time", "Asia/Tokyo", caller=AGENT)
        self.back_to_tools()  # out of the field: digits switch screens again

    def call(self, tool: str, timezone: str, caller: str | None) -> None:
        t = self.term
        if caller is not None:
            self.choose_caller(caller)
            self.back_to_tools()
        self.pick_tool(tool)
        # On to the arguments: typed on only once the focus is drawn there (a fixed pause lost
        # the first letters to the tool list on a busy machine: "a/Tokyo").
        t.press_and_settle("enter", timeout=10)
        t.type(timezone)
        self.check("try_argument_visible", self.shows(re.escape(timezone)),
                   f"Try: the argument typed ({timezone}) is not shown whole")
        done = rf"✓ local/{re.escape(tool)}|✗ (REFUSED|isError)"
        t.press("enter")  # Enter on the last field runs the call
        ran = self.shows(done, timeout=10)
        self.check("try_enter_runs", ran, f"Try: Enter in the last field of {tool} did not run it")
        if not ran:
            t.press("ctrl+j")  # the Run key every terminal delivers today (ctrl+enter is not delivered)
            self.shows(done, timeout=30)
        who = f"as agent {caller}" if caller else "as the owner"
        self.check("try_calls", self.shows(rf"✓ local/{re.escape(tool)}") and timezone in t.text(),
                   f"Try: calling {tool} {who} did not return the time in {timezone}")

    def choose_caller(self, caller: str) -> None:
        """From the arguments, shift+tab back to the caller list (its background changes when it
        has focus), open it with Enter and pick ``caller``."""
        t = self.term
        for _ in range(8):
            t.press_and_settle("shift+tab")
            if self.shows_focus(CALLER):
                break
        else:
            raise AssertionError(f"shift+tab never reached the caller list\n{t.dump()}")
        t.press("enter")  # open the caller list
        t.wait_for(f"agent {caller}")
        t.type(f"agent {caller}")  # type to search the list, as in any select
        t.press("enter")
        t.wait(lambda s: re.search(rf"agent {caller}\s*▼", s) and "Dismiss menu" not in s, f"calling as agent {caller}")

    def back_to_tools(self) -> None:
        """Shift+tab until the tool list has the focus: home there shows the first tool."""
        t = self.term
        first = t.lines()[t.row_of("TOOL") + 1].split()[0]
        for _ in range(6):
            t.press_and_settle("shift+tab")
            t.press("home")
            with contextlib.suppress(AssertionError):
                t.wait(lambda _s: self.current_tool() == first, "the first tool", timeout=1.5)
                return
        raise AssertionError(f"shift+tab never reached the tool list\n{t.dump()}")

    def shows_focus(self, text: str, timeout: float = 1.0) -> bool:
        """Whether ``text`` comes to be drawn on the focused background within a moment."""
        t = self.term
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if t.background(text) not in (None, self.unfocused.get(text)):
                return True
            time.sleep(0.05)
        return False

    def pick_tool(self, tool: str) -> None:
        """In the (focused) tool list, move down to ``tool``: its name heads the work area."""
        t = self.term
        t.press("home")
        for _ in range(12):
            with contextlib.suppress(AssertionError):
                t.wait(lambda _s: self.current_tool() == tool, f"{tool} picked", timeout=1)
            if self.current_tool() == tool:
                return
            before = self.current_tool()
            t.press("down")
            with contextlib.suppress(AssertionError):
                t.wait(lambda _s, before=before: self.current_tool() != before, "the next tool", timeout=5)
        raise AssertionError(f"could not pick {tool}\n{t.dump()}")

    def current_tool(self) -> str | None:
        """The tool whose form is shown: its TOOLBOX/SERVER/TOOL heads the work area."""
        found = re.search(r"▕ local/(\S+)", self.term.text())
        return found.group(1) if found else None

    def audit(self) -> None:
        """The gateway's record of scout's call is there; v verifies the chain."""
        t = self.term
        self.goto("6", "SEQ")
        self.frame("6 Audit")
        header = t.lines()[t.row_of("SEQ")]
        cut = [c for c in AUDIT_COLUMNS if not re.search(rf"\b{c}\b", header)]
        self.check("audit_columns", not cut, f"Audit: columns cut or missing: {cut}")
        screen = t.wait(lambda s: re.search(rf"tool\.call\s+allow\s+\S*{SERVER}/get_current_time", s),
                        f"the record of {AGENT}'s call", timeout=15)
        if self.cols >= 120:  # room enough: the target column grows to show the whole name
            target = re.search(rf"tool\.call\s+allow\s+(\S*{SERVER}/get_current_time)", screen)
            self.check("names_grow", target and "…" not in target.group(1),
                       f"Audit at {self.size}: the target is cut: {target and target.group(1)}")
        t.press("v")
        t.wait(lambda s: re.search(r"chain intact: \d+ records", s), "the chain verified")

    def connections(self) -> None:
        """Nothing connected yet: c asks for the OAuth app to sign in with first; Escape closes it."""
        t = self.term
        self.goto("8", "PROVIDER")
        self.frame("8 Connections")
        t.press("c")
        t.wait_for("client id", "client secret")
        t.press("escape")
        t.wait_gone("client secret")

    def help(self) -> None:
        """? lists every key with its binding id, whole, by the names a person presses."""
        t = self.term
        t.press("?")
        t.wait_for("Remap a key by its binding id")
        # The dialog draws its table a moment after its title: give it that moment.
        whole = self.shows(r"\bBINDING ID\b(.|\n)*\bnav\.toolboxes\b", timeout=5)
        self.check("help_whole", whole, "Help: the binding-id column is cut or missing")
        self.check("help_names", not HELP_NAMES.search(t.text()), "Help shows internal key names")
        t.press("escape")
        t.wait_gone("Remap a key by its binding id")

    def quit(self) -> None:
        self.term.press("q")
        self.finish("first run")

    def restart(self) -> None:
        """The next start asks for the passphrase (Enter opens) and finds everything as it was."""
        t = self.unlock()
        t.wait(lambda s: re.search(r"\A.*gateway (on|127\.0\.0\.1:\d+)", s), "the gateway still serving", 15)
        self.frame("after unlock")
        t.press("q")
        self.finish("restart")

    # -- leaving nothing behind --------------------------------------------------------------

    def cleanup(self) -> None:
        """Stop the gateway this journey started and remove its servers' containers."""
        from console.paths import resolve_paths
        from console.tui.backend import Backend

        paths = resolve_paths({"TBX_HOME": str(self.home)})
        if not paths.vault.exists():
            return
        backend = Backend(paths)
        backend.open_vault(PASSPHRASE)
        backend.stop_gateway("local")
        boxes = [box.id for box in backend.workspace.repos.toolboxes]
        client = docker.from_env()
        for box in boxes:
            for container in client.containers.list(all=True, filters={"label": f"io.tbx.toolbox={box}"}):
                container.remove(force=True)
