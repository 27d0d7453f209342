"""7 Try: the form, refusing to send what is wrong, and real calls as the owner and as an agent."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from textual.widgets import Button, DataTable, Input, Select, Static

from console.catalog import load_catalog
from console.paths import resolve_paths
from console.services import agents, grants, servers, toolboxes
from console.services.grants import Target
from console.services.tools import approve
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.modals.confirm import ConfirmModal
from console.tui.screens.audit import AuditScreen
from console.tui.screens.try_tool import TryScreen
from console.tui.widgets.try_call import Exchange, TryOutcome
from console.tui.widgets.try_result import ResultView, content_block
from tests.support.screen import screen_lines, widget_text
from tests.support.sharedkeys import shared_keyring_home
from tests.support.tui import still_app
from tests.tui.test_audit_screen import plain

SIZE = (120, 36)
REPO = Path(__file__).resolve().parents[2]


async def settle(app: ConsoleApp, pilot) -> None:  # noqa: ANN001
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def open_try(app: ConsoleApp, pilot, tool: str | None = None) -> TryScreen:  # noqa: ANN001
    await pilot.press("7")
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, TryScreen)
    if tool is not None:
        table = screen.query_one("#tools", DataTable)
        table.move_cursor(row=table.get_row_index(tool))
        await settle(app, pilot)
        assert screen.tool_key == tool
    return screen


def type_into(screen: TryScreen, path: str, text: str) -> None:
    field = screen.form.field(path)
    assert field is not None, path
    field.control.value = text  # type: ignore[attr-defined]


async def test_tools_are_listed_with_their_trust_and_searchable(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_try(app, pilot)
        table = screen.query_one("#tools", DataTable)
        rows = {table.get_row_at(i)[0]: str(table.get_row_at(i)[1]) for i in range(table.row_count)}
        assert rows["time/get_current_time"] == "✓ approved" and rows["git/git_log"] == "≠ changed"
        assert rows["files/list_directory"] == "● pending"
        await pilot.press("slash", *"time")
        await pilot.pause()
        assert [table.get_row_at(i)[0] for i in range(table.row_count)] == ["time/convert_time",
                                                                         "time/get_current_time"]


async def test_nothing_is_sent_while_the_form_has_problems(seeded: Backend) -> None:
    before = seeded.paths.audit_log.read_bytes()
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_try(app, pilot, "time/get_current_time")
        await pilot.press("ctrl+enter")
        await settle(app, pilot)
        assert screen.form.field("timezone").problem_text == "required"  # type: ignore[union-attr]
        assert "not sent: timezone: required" in str(screen.form.query_one("#form-problem", Static).render())
        assert screen.query_one(ResultView).outcome is None
    assert seeded.paths.audit_log.read_bytes() == before  # no call was made, none audited


async def test_what_was_typed_stays_with_its_tool_and_raw_json_carries_it(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_try(app, pilot, "time/get_current_time")
        type_into(screen, "timezone", "Asia/Tokyo")
        await pilot.press("up")
        await settle(app, pilot)
        assert screen.tool_key == "time/convert_time"
        await pilot.press("down")
        await settle(app, pilot)
        assert screen.form.value() == {"timezone": "Asia/Tokyo"}
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert screen.form.raw and json.loads(screen.form.raw_editor.text) == {"timezone": "Asia/Tokyo"}


async def test_as_an_agent_with_no_gateway_it_offers_to_start_one(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_try(app, pilot, "time/get_current_time")
        screen.query_one("#caller", Select).value = "claude-desktop"
        type_into(screen, "timezone", "UTC")
        await pilot.press("ctrl+enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmModal) and app.screen.title_text == "Start the gateway?"
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen is screen and seeded.gateway_info("local") is None


class SilentGateway:
    """Answers /healthz like a gateway, then never answers a call: a call to cancel."""

    def __init__(self) -> None:
        import http.server
        import threading

        release = self.release = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def do_POST(self) -> None:  # noqa: N802
                release.wait(30)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


async def test_a_call_shows_its_time_running_and_can_be_cancelled(seeded: Backend) -> None:
    gateway = SilentGateway()
    state = seeded.paths.state_dir / "gateway-local.json"
    state.write_text(json.dumps({"url": gateway.url, "pid": os.getpid(), "started": time.time()}))
    try:
        app = still_app(seeded)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_try(app, pilot, "time/get_current_time")
            screen.query_one("#caller", Select).value = "claude-desktop"
            type_into(screen, "timezone", "UTC")
            await pilot.press("ctrl+enter")
            await pilot.pause(0.6)
            running = str(screen.query_one("#call-state", Static).render())
            assert running.startswith("running ") and running.endswith(" s · esc: cancel"), running
            assert float(running.split()[1]) >= 0.3
            started = time.monotonic()
            await pilot.press("escape")
            await settle(app, pilot)
            assert time.monotonic() - started < 5  # the worker let go of the call, not waited it out
            assert str(screen.query_one("#call-state", Static).render()).startswith("cancelled")
            assert screen.query_one(ResultView).outcome is None
            assert app.screen is screen  # escape cancelled the call; it did not leave the screen
    finally:
        gateway.stop()
        state.unlink(missing_ok=True)


async def test_outcomes_render_refusals_errors_and_binaries(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_try(app, pilot, "time/convert_time")
        view = screen.query_one(ResultView)
        screen.show_outcome(TryOutcome("local/time/convert_time", "cursor",
                                       refusal="tool 'time__convert_time' is not granted to this agent"))
        await pilot.pause()
        status = plain(view.query_one("#verdict", Static))
        assert "REFUSED as agent cursor (through the gateway): tool 'time__convert_time' is not granted" in status
        assert view.query_one("#verdict", Static).has_class("-bad")
        screen.show_outcome(TryOutcome("local/time/convert_time", "@owner", elapsed_ms=1.0, result={
            "content": [{"type": "text", "text": "Invalid timezone: Mars/Olympus"}], "isError": True},
            exchange=[Exchange("sent", b'{"jsonrpc":"2.0"}')]))
        await pilot.pause()
        assert "isError" in plain(view.query_one("#verdict", Static))
        assert "Invalid timezone: Mars/Olympus" in plain(view.query_one("#result-body", Static))
        assert '{"jsonrpc":"2.0"}' in plain(view.query_one("#exchange", Static))
    image = content_block({"type": "image", "mimeType": "image/png", "data": "iVBORw0KGgo="})
    assert str(image) == "[image: image/png, 8 bytes]"
    assert "audio/wav" in str(content_block({"type": "audio", "mimeType": "audio/wav", "data": "AAAA"}))


# -- with the real engine ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Iterator[Backend]:  # noqa: ANN001
    """A vault with the local toolbox, the real time server approved, and an agent granted one of its
    tools; its key in a keyring file so a `tbx gateway serve` the console starts can open it."""
    with shared_keyring_home(tmp_path_factory.mktemp("try")):
        paths = resolve_paths()
        paths.ensure()
        backend = Backend(paths)
        ws = backend.create_vault(None)
        toolbox = toolboxes.add_local(ws, "local")
        try:
            servers.add_server(ws, "local", load_catalog(paths).get("time"))
            approve(ws, "local", "time")
            agents.add_agent(ws, "helper")
            grants.grant(ws, "helper", Target.parse("local"))
            grants.grant(ws, "helper", Target.parse("local/time/get_current_time"))
            yield backend
        finally:
            backend.stop_gateway("local")
            for container in docker.from_env().containers.list(all=True,
                                                              filters={"label": f"io.tbx.toolbox={toolbox.id}"}):
                container.remove(force=True)


def messages(outcome: TryOutcome) -> list[tuple[str, dict]]:
    """The JSON-RPC messages of an exchange (HTTP bodies may be SSE: 'data:' lines)."""
    found = []
    for item in outcome.exchange:
        text = item.body.decode()
        for chunk in [line[5:] for line in text.splitlines() if line.startswith("data:")] or [text]:
            if chunk.strip():
                found.append((item.direction, json.loads(chunk)))
    return found


@pytest.mark.docker
async def test_try_as_the_owner_shows_the_result_and_the_exchange(real: Backend) -> None:
    app = ConsoleApp(real, live=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_try(app, pilot, "time/get_current_time")
        type_into(screen, "timezone", "Europe/Paris")
        await pilot.press("ctrl+enter")
        await settle(app, pilot)
        outcome = screen.query_one(ResultView).outcome
        assert outcome is not None and outcome.ok, outcome
        assert json.loads(outcome.result["content"][0]["text"])["timezone"] == "Europe/Paris"  # type: ignore[index]
        assert "Europe/Paris" in plain(screen.query_one("#result-body", Static))
        exchange = messages(outcome)
        methods = [m.get("method") for way, m in exchange if way == "sent"]
        # The SDK lists tools after a call to check its structured result: that crossed the wire too.
        assert methods[:3] == ["initialize", "notifications/initialized", "tools/call"]
        assert set(methods[3:]) <= {"tools/list"}
        [(_, call)] = [(w, m) for w, m in exchange if m.get("method") == "tools/call"]
        assert call["params"] == {"name": "get_current_time", "arguments": {"timezone": "Europe/Paris"}}
        [(_, answer)] = [(w, m) for w, m in exchange if w == "received" and m.get("id") == call["id"]]
        assert answer["result"]["content"][0]["type"] == "text"
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert '"method":"tools/call"' in plain(screen.query_one("#exchange", Static))


@pytest.mark.docker
async def test_try_as_an_agent_through_the_gateway_it_started(real: Backend) -> None:
    app = ConsoleApp(real, live=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_try(app, pilot, "time/get_current_time")
        screen.query_one("#caller", Select).value = "helper"
        type_into(screen, "timezone", "Asia/Kolkata")
        await pilot.press("ctrl+enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")  # start the gateway, then the call goes through it
        await settle(app, pilot)
        assert real.gateway_info("local") is not None
        outcome = screen.query_one(ResultView).outcome
        assert outcome is not None and outcome.ok, outcome
        assert "Asia/Kolkata" in outcome.result["content"][0]["text"]  # type: ignore[index]
        sent = [m for way, m in messages(outcome) if way == "sent"]
        assert any(m.get("method") == "tools/call" and m["params"]["name"] == "time__get_current_time" for m in sent)
        assert all("Bearer" not in item.body.decode() for item in outcome.exchange)  # no header, no token

        table = screen.query_one("#tools", DataTable)
        table.move_cursor(row=table.get_row_index("time/convert_time"))
        await settle(app, pilot)
        type_into(screen, "source_timezone", "UTC")
        type_into(screen, "target_timezone", "Asia/Tokyo")
        type_into(screen, "time", "09:30")
        await pilot.press("ctrl+enter")
        await settle(app, pilot)
        refused = screen.query_one(ResultView).outcome
        assert refused is not None and refused.result is None
        assert refused.refusal == "tool 'time__convert_time' is not granted to this agent"
        assert "REFUSED as agent helper" in plain(screen.query_one("#verdict", Static))

        await pilot.press("6")
        await settle(app, pilot)
        audit = app.screen
        assert isinstance(audit, AuditScreen)
        audit.query_one("#agent", Select).value = "helper"
        audit.query_one("#text", Input).value = "time/"
        deadline = time.monotonic() + 15  # the gateway writes its records in batches
        wanted = [("allow", "tool:local/time/get_current_time"), ("deny", "tool:local/time/convert_time")]
        while time.monotonic() < deadline:
            await pilot.press("ctrl+r")
            await settle(app, pilot)
            table = audit.query_one("#records", DataTable)
            rows = [(str(table.get_row_at(i)[4]), table.get_row_at(i)[5]) for i in range(table.row_count)]
            if [row for row in rows if row in wanted] == wanted:
                break
            await pilot.pause(0.3)
        assert [row for row in rows if row in wanted] == wanted, rows


# -- from the keyboard, in any terminal -----------------------------------------------------------


async def test_enter_in_the_last_field_and_f5_run_the_tool(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_try(app, pilot, "time/get_current_time")
        await pilot.press("enter")  # on the tool: on to its arguments
        field = screen.form.field("timezone")
        assert field is not None and app.focused is field.control
        await pilot.press("enter")  # the only field is the last: Enter runs, and the form refuses
        await pilot.pause()
        assert field.problem_text == "required"
        assert "not sent: timezone: required" in plain(screen.form.query_one("#form-problem", Static))

        screen.query_one("#caller", Select).value = "claude-desktop"
        await pilot.press(*"UTC", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmModal) and app.screen.title_text == "Start the gateway?"
        await pilot.press("escape")
        await settle(app, pilot)
        for key in ("f5", "ctrl+j"):  # what every terminal delivers, whatever has the focus
            screen.query_one("#tools", DataTable).focus()
            await pilot.press(key)
            await settle(app, pilot)
            assert isinstance(app.screen, ConfirmModal), key
            await pilot.press("escape")
            await settle(app, pilot)
        assert "f5 Run" in screen_lines(app)[-1]  # the footer names the key


async def test_enter_in_an_earlier_field_moves_on_without_running(seeded: Backend) -> None:
    three = {"type": "object", "required": ["source_timezone", "time", "target_timezone"], "properties": {
        name: {"type": "string"} for name in ("source_timezone", "time", "target_timezone")}}
    with seeded.workspace.change() as change:
        [tool] = [t for s in change.repos.servers.in_toolbox(change.repos.toolboxes.require("local").id)
                  for t in change.repos.tools.of_server(s.id) if t.name == "convert_time"]
        change.repos.tools.put(tool.model_copy(update={"input_schema": three}))
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_try(app, pilot, "time/convert_time")
        await pilot.press("enter")
        fields = [screen.form.field(name).control for name in ("source_timezone", "time", "target_timezone")]  # type: ignore[union-attr]
        assert app.focused is fields[0]
        await pilot.press(*"UTC", "enter")
        assert app.focused is fields[1]
        await pilot.press("enter")
        assert app.focused is fields[2]
        assert not screen.form.query_one("#form-problem", Static).has_class("shown")  # nothing was run yet
        await pilot.press("enter")  # the last field: run, and the form says what is missing
        await pilot.pause()
        assert "not sent: time: required" in plain(screen.form.query_one("#form-problem", Static))


async def test_run_looks_focused_only_when_it_is(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_try(app, pilot, "time/get_current_time")
        run, raw = screen.query_one("#run", Button), screen.query_one("#raw-toggle", Button)
        assert app.focused is screen.query_one("#tools")
        assert run.styles.background == raw.styles.background  # drawn like any button
        await pilot.press("enter")  # to the field
        for _ in range(5):
            if app.focused is run:
                break
            await pilot.press("shift+tab" if app.focused is raw else "tab")
        assert app.focused is run
        await pilot.pause()
        assert run.styles.background != raw.styles.background
        assert run.styles.background == app.current_theme.to_color_system().primary


async def test_the_old_status_goes_when_the_tool_changes_or_a_run_starts(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_try(app, pilot, "time/get_current_time")
        view = screen.query_one(ResultView)
        state = screen.query_one("#call-state", Static)
        screen.show_outcome(TryOutcome("local/time/get_current_time", "cursor", refusal="not granted"))
        await pilot.pause()
        assert plain(state).startswith("refused")
        await pilot.press("up")  # another tool
        await settle(app, pilot)
        assert screen.tool_key == "time/convert_time"
        assert plain(state).strip() == "" and view.outcome is None
        assert "REFUSED" not in plain(view.query_one("#verdict", Static))
        assert plain(view.query_one("#verdict", Static)).startswith("nothing run yet")

        await pilot.press("down")
        await settle(app, pilot)
        screen.show_outcome(TryOutcome("local/time/get_current_time", "@owner", elapsed_ms=3.0, result={
            "content": [{"type": "text", "text": "an old answer"}]}))
        await pilot.pause()
        screen.query_one("#caller", Select).value = "claude-desktop"
        type_into(screen, "timezone", "UTC")
        await pilot.press("f5")  # no gateway: a question, and the run ends without a result
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmModal)
        assert "an old answer" not in plain(view.query_one("#result-body", Static))  # not under the new run
        await pilot.press("escape")
        await settle(app, pilot)
        assert not plain(state).startswith("running")
        assert view.outcome is None and "an old answer" not in plain(view.query_one("#result-body", Static))


async def test_run_is_on_screen_at_80x24(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_try(app, pilot, "time/get_current_time")
        run = screen.query_one("#run", Button)
        assert app.screen.region.contains_region(run.region), f"Run at {run.region}"
        assert "Run ▶" in widget_text(app, run)
        assert widget_text(app, screen.query_one("#caller", Select)).strip()  # who calls, still shown


async def test_the_answer_stays_whatever_tick_comes_after_it(seeded: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker hands over the answer, then says it is done: a tick of the running clock
    in between wrote "running 0.5 s" over the verdict, and nothing wrote it back."""
    def answer(_ws: object, target: str, _arguments: dict) -> TryOutcome:
        time.sleep(0.3)  # long enough for the clock to tick
        return TryOutcome(target, "@owner", result={"content": [{"type": "text", "text": "12:00"}]}, elapsed_ms=3.0)

    monkeypatch.setattr("console.tui.screens.try_tool.call_as_owner", answer)
    original = TryScreen._call_done

    def later(self: TryScreen, call_id: int, cancelled: bool) -> None:
        self.set_timer(0.35, lambda: original(self, call_id, cancelled))  # ticks come in between

    monkeypatch.setattr(TryScreen, "_call_done", later)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_try(app, pilot, "time/get_current_time")
        type_into(screen, "timezone", "UTC")
        await pilot.press("f5")
        await settle(app, pilot)
        await pilot.pause(0.5)
        state = plain(screen.query_one("#call-state", Static)).strip()
        assert state == "ok · 3.0 ms", state


async def test_at_80_columns_a_field_takes_the_width_under_its_label(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_try(app, pilot, "time/get_current_time")
        await pilot.press("enter", *"Europe/Paris")
        field = screen.form.field("timezone")
        assert field is not None
        work = screen.query_one("#work").content_region
        control = field.control.region
        assert control.width >= work.width - 4, f"{control} in {work}"  # not squeezed beside a 24-column label
        assert "Europe/Paris" in widget_text(app, field.control)


async def test_enter_on_a_tool_without_arguments_lands_on_run(seeded: Backend) -> None:
    with seeded.workspace.change() as change:
        [tool] = [t for s in change.repos.servers.in_toolbox(change.repos.toolboxes.require("local").id)
                  for t in change.repos.tools.of_server(s.id) if t.name == "git_status"]
        change.repos.tools.put(tool.model_copy(update={"input_schema": {"type": "object", "properties": {}}}))
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_try(app, pilot, "git/git_status")
        await pilot.press("enter")
        assert app.focused is screen.query_one("#run", Button)


async def test_escape_leaves_the_arguments_for_the_list_so_digits_switch_screens_again(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_try(app, pilot, "time/get_current_time")
        await pilot.press("enter", *"UTC")
        field = screen.form.field("timezone")
        assert field is not None and app.focused is field.control
        await pilot.press("escape")
        assert app.focused is screen.query_one("#tools") and app.screen is screen
        assert screen.form.value() == {"timezone": "UTC"}  # what was typed stays
        await pilot.press("6")
        await settle(app, pilot)
        assert isinstance(app.screen, AuditScreen)


async def test_the_screen_reads_the_vault_once_when_it_opens(seeded: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """Textual calls ``on_mount`` of every class in the MRO: a ``super().on_mount()`` on
    top of that ran ConsoleScreen's (a full reload) twice on every first visit."""
    from console.tui.screens.base import ConsoleScreen

    mounts: list[str] = []
    original = ConsoleScreen.on_mount

    def counted(self: ConsoleScreen) -> None:
        mounts.append(type(self).__name__)
        original(self)

    monkeypatch.setattr(ConsoleScreen, "on_mount", counted)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await open_try(app, pilot)
    assert mounts.count("TryScreen") == 1
