"""Binding an OAuth connection when adding a server: the add form offers the user's
connections of the entry's provider, checks them before anything starts, and a bound
server's configuration names its account."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from console.tui.backend import Backend
from console.tui.modals.add_server import AddServerModal
from console.tui.widgets.add_server_form import AddServerForm, FormProblem
from console.tui.widgets.connection_picker import ConnectionPicker
from console.tui.widgets.server_detail import config_table
from tests.support.connections_seed import seed_connections
from tests.support.tui import still_app

SIZE = (120, 36)


async def until(pilot: Pilot, check: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds:g} s for {what}")
        await pilot.pause(0.05)


async def open_add_form(pilot: Pilot, entry_id: str) -> AddServerForm:
    await pilot.press("2")
    await pilot.pause()
    await pilot.press("a")
    await pilot.pause()
    modal = pilot.app.screen
    assert isinstance(modal, AddServerModal)
    modal.query_one("#search", Input).value = entry_id
    await until(pilot, lambda: modal.current is not None and modal.current.id == entry_id
                and modal.query(AddServerForm), 5, f"the {entry_id} form")
    await pilot.pause()  # the form's widgets take their values when mounted
    return modal.query_one(AddServerForm)


async def test_adding_a_github_server_offers_the_github_connections(seeded: Backend) -> None:
    ids = seed_connections(seeded.workspace)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_add_form(pilot, "github")
        picker = form.query_one(ConnectionPicker)
        assert [c.account for c in picker.offered] == ["alice", "alice-work"]  # github ones only
        assert picker.value == ids["github/alice"]
        request = form.collect()  # no token needed: the connection gives it
        assert request.connection == ids["github/alice"] and request.secrets == {}

        form.query_one("#secret-GITHUB_PERSONAL_ACCESS_TOKEN", Input).value = "ghp_typed"
        with pytest.raises(FormProblem, match="either a connection or a token"):
            form.collect()
        picker.value = Select.NULL
        await pilot.pause()
        request = form.collect()  # the secret path still works
        assert request.connection is None and request.secrets == {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_typed"}
        form.query_one("#secret-GITHUB_PERSONAL_ACCESS_TOKEN", Input).value = ""
        with pytest.raises(FormProblem, match="pick a connection above, or give a token"):
            form.collect()


async def test_a_connection_without_the_scopes_a_server_needs_is_refused_in_the_form(seeded: Backend) -> None:
    ids = seed_connections(seeded.workspace)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_add_form(pilot, "slack")
        assert form.query_one(ConnectionPicker).value == ids["slack/carol@acme"]
        form.query_one("#env-SLACK_TEAM_ID", Input).value = "T0123"
        with pytest.raises(FormProblem, match="was not granted channels:history") as problem:
            form.collect()
        assert problem.value.field_id == "connection"


async def test_a_google_drive_server_binds_a_google_connection_instead_of_a_folder(seeded: Backend) -> None:
    ids = seed_connections(seeded.workspace)
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_add_form(pilot, "google-drive")
        assert form.collect().connection == ids["google/bob@example.com"]
        form.query_one(ConnectionPicker).value = Select.NULL
        await pilot.pause()
        with pytest.raises(FormProblem, match="pick a connection, or give the folder"):
            form.collect()


async def test_without_a_connection_the_form_says_where_to_get_one(seeded: Backend) -> None:
    app = still_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_add_form(pilot, "github")
        assert not form.query(ConnectionPicker)
        note = str(form.query_one(".form-note", Static).content)
        assert "No github connection yet: connect one on Connections (8)" in note
        with pytest.raises(FormProblem, match="GITHUB_PERSONAL_ACCESS_TOKEN is required"):
            form.collect()


async def test_a_bound_servers_config_names_its_account(seeded: Backend) -> None:
    seed_connections(seeded.workspace)
    ws = seeded.workspace
    server = ws.repos.servers.by_name(ws.repos.toolboxes.require("local").id, "github")
    assert server is not None
    app = still_app(seeded)
    async with app.run_test(size=SIZE):
        console = Console(width=100, file=io.StringIO(), record=True)
        console.print(config_table(app, server))
        assert "github (repo) · connection github/alice" in console.export_text()
