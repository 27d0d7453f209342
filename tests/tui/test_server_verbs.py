"""2 Servers: what removing a server takes away, said by name; the edit form; the full
log screen — on the seeded vault (nothing live)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input

from console.model import Limits, Mount
from console.services import server_edit
from console.services.server_edit import EditOutcome

from console.tui.backend import Backend
from console.tui.modals.confirm import ConfirmModal
from console.tui.modals.edit_server import EditServerModal
from tests.support.tui import still_app
from tests.tui.test_servers_screen import SIZE, open_servers


async def pick(pilot: Pilot, name: str) -> None:
    """Filter the servers down to one, as a user does: / name enter."""
    await pilot.press("slash", *name, "enter")
    await pilot.pause()


async def test_removing_a_server_names_the_agents_that_lose_access(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await open_servers(pilot)
        await pick(pilot, "time")
        await pilot.press("d")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ConfirmModal) and modal.title_text == "Remove local/time?"
        assert "claude-desktop loses access to it: its grants are deleted." in modal.body
        assert "every grant" not in modal.body
        await pilot.press("escape")
        await pilot.pause()

        await pilot.press("escape")  # the filter: every server again
        await pick(pilot, "notes")
        await pilot.press("d")
        await pilot.pause()
        assert "No agent holds a grant to it." in app.screen.body  # type: ignore[attr-defined]
        await pilot.press("n")


def give_spec(backend: Backend, name: str, catalog_id: str, **fields: object) -> None:
    """A seeded server made as an add makes it: with its catalog entry as its spec."""
    from console.catalog import load_catalog

    ws = backend.workspace
    entry = load_catalog(ws.paths).get(catalog_id)
    with ws.change() as change:
        server = next(s for s in change.repos.servers if s.name == name)
        for key, value in {"spec": entry.model_dump(mode="json"), **fields}.items():
            setattr(server, key, value)
        change.repos.servers.put(server)


async def test_e_opens_the_edit_form_filled_in_and_checks_it_before_anything_starts(
        seeded: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The form and its checks; the edit itself (Docker) is tests/tui/test_server_edit_live.py's."""

    folder = tmp_path / "graph"
    folder.mkdir()
    give_spec(seeded, "notes", "memory", env={"MEMORY_FILE_PATH": "/data/memory.jsonl", "EXTRA": "1"},
              mounts=[Mount(source=str(folder), target="/data")], limits=Limits(cpus=0.5, memory_mb=300, pids=99))
    edits: list[tuple[str, dict]] = []

    def edit_server(ws, target: str, **kwargs: object) -> EditOutcome:  # noqa: ANN001 - no engine here
        edits.append((target, kwargs))
        return EditOutcome(["mounts", "limits"])

    monkeypatch.setattr(server_edit, "edit_server", edit_server)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_servers(pilot)
        await pick(pilot, "notes")
        await pilot.press("e")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, EditServerModal)
        value = {i.id: i.value for i in modal.query(Input)}
        assert value["env-MEMORY_FILE_PATH"] == "/data/memory.jsonl" and value["env-EXTRA"] == "1"
        assert value["mount-0"] == str(folder) and not modal.query_one("#ro-0", Checkbox).value
        assert (value["limit-cpus"], value["limit-memory"], value["limit-pids"]) == ("0.5", "300", "99")

        modal.query_one("#mount-0", Input).value = ""
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "/data needs a folder" in str(modal.query_one("#problem").render())
        assert modal.focused is modal.query_one("#mount-0", Input)
        modal.query_one("#ro-0", Checkbox).value = True
        modal.query_one("#limit-memory", Input).value = "400"
        await pilot.press(*str(folder), "enter")  # valid: the edit runs in the screen's worker
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen is screen and not screen.busy
        [(target, kwargs)] = edits
        assert target == "local/notes" and kwargs["limits"] == Limits(cpus=0.5, memory_mb=400, pids=99)
        assert kwargs["mounts"] == [Mount(source=str(folder), target="/data", read_only=True)]
        assert kwargs["env"] == {"MEMORY_FILE_PATH": "/data/memory.jsonl", "EXTRA": "1"}
        activity = "\n".join(screen.query_one("#activity").lines)  # type: ignore[attr-defined]
        assert "notes: editing" in activity and "notes: mounts, limits changed, container made again" in activity

        await pilot.press("e")
        await pilot.pause()
        modal = app.screen
        modal.query_one("#env-new", Input).value = "no equals sign"
        await pilot.click("#save")
        await pilot.pause()
        assert "a new variable is NAME=value" in str(modal.query_one("#problem").render())
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen

        await pilot.press("escape")
        await pick(pilot, "git")  # a server with no stored spec: said, no form
        await pilot.press("e")
        await pilot.pause()
        assert app.screen is screen
        assert any("has no stored spec" in n.message for n in app._notifications)


async def test_the_full_log_needs_a_live_engine_and_says_so(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_servers(pilot)
        await pilot.press("L")
        await pilot.pause()
        assert app.screen is screen
        assert any("read live from the server's container" in n.message for n in app._notifications)


@pytest.mark.parametrize(("state", "asks"), [("missing", False), ("exited", False), ("running", True),
                                              ("restarting", True)])
async def test_s_starts_a_server_meant_to_run_whose_container_is_gone(
        seeded: Backend, monkeypatch: pytest.MonkeyPatch, state: str, asks: bool) -> None:
    """`time` is meant to run; what `s` does follows its container as the engine reports it:
    a stopped or missing one is started without a question, a running one asks to stop."""
    from console.runtime.supervisor import Health
    from console.tui.screens.servers import ServersScreen

    done: list[str] = []
    monkeypatch.setattr(ServersScreen, "live", property(lambda self: True))
    monkeypatch.setattr(ServersScreen, "_follow_stats", lambda self: None)
    monkeypatch.setattr(ServersScreen, "_operate", lambda self, verb, server: done.append(f"{verb} {server.name}"))
    app = still_app(seeded)
    monkeypatch.setattr(app, "health", lambda server_id: Health(server_id, "local/time", state=state))
    async with app.run_test(size=SIZE) as pilot:
        await open_servers(pilot)
        await pick(pilot, "time")
        await pilot.press("s")
        await pilot.pause()
        if asks:
            assert isinstance(app.screen, ConfirmModal) and app.screen.title_text == "Stop local/time?"
            await pilot.press("y")
            await pilot.pause()
            assert done == ["stop time"]
        else:
            assert not isinstance(app.screen, ConfirmModal)
            assert done == ["start time"]
