"""Commit events: who follows the vault (the console, the CLI's push) hears of each change
once it is on disk, with the tables it changed, on the thread that made it."""

from __future__ import annotations

import threading

import pytest

from console.errors import NotFound
from console.model import Agent
from console.paths import Paths
from console.services import agents, grants, toolboxes
from console.services.grants import Target
from console.workspace import Commit, Workspace


@pytest.fixture
def heard(workspace: Workspace) -> list[Commit]:
    commits: list[Commit] = []
    workspace.on_commit(commits.append)
    return commits


def test_a_change_is_told_once_on_disk_with_the_tables_it_changed(workspace: Workspace, tbx_home: Paths,
                                                                  heard: list[Commit]) -> None:
    on_disk: list[bool] = []
    workspace.on_commit(lambda _commit: on_disk.append(
        Workspace.open(tbx_home).repos.agents.by_name("claude") is not None))

    agents.add_agent(workspace, "claude")

    assert heard == [Commit(frozenset({"agents", "meta"}))]  # meta: the audit record's checkpoint
    assert on_disk == [True]
    assert not heard[0].records_only


def test_a_grant_names_the_grant_tables_and_nothing_else(workspace: Workspace, heard: list[Commit]) -> None:
    toolboxes.add_local(workspace, "local")
    agents.add_agent(workspace, "claude")
    heard.clear()

    grants.grant(workspace, "claude", Target.parse("local"))

    assert [commit.tables for commit in heard] == [frozenset({"toolbox_grants", "meta"})]


def test_a_change_inside_a_change_is_told_once_when_the_outer_one_lands(workspace: Workspace,
                                                                       heard: list[Commit]) -> None:
    with workspace.change() as outer:
        outer.repos.agents.put(Agent(name="one", token_hash="h1"))
        with workspace.change() as inner:
            inner.repos.agents.put(Agent(name="two", token_hash="h2"))
        assert heard == []
    assert [commit.tables for commit in heard] == [frozenset({"agents"})]


def test_a_change_that_fails_or_writes_nothing_is_not_told(workspace: Workspace, heard: list[Commit]) -> None:
    with pytest.raises(NotFound), workspace.change() as change:
        change.repos.agents.put(Agent(name="gone", token_hash="h"))
        raise NotFound("changed my mind")
    with workspace.change():
        pass
    assert heard == []
    assert workspace.repos.agents.by_name("gone") is None


def test_audit_records_alone_are_records_only(workspace: Workspace, heard: list[Commit]) -> None:
    with workspace.change() as change:
        change.record("test.note", "nothing")
    assert [commit.records_only for commit in heard] == [True]


def test_another_process_s_write_is_told_when_read_again(workspace: Workspace, tbx_home: Paths,
                                                         heard: list[Commit]) -> None:
    other = Workspace.open(tbx_home)
    assert workspace.refresh() is False and heard == []

    agents.add_agent(other, "elsewhere")

    assert workspace.refresh() is True
    assert len(heard) == 1 and {"agents", "meta"} <= heard[0].tables
    assert workspace.refresh() is False and len(heard) == 1


def test_listeners_run_on_the_committing_thread_and_a_failing_one_fails_nothing(workspace: Workspace) -> None:
    threads: list[str] = []

    def fails(_commit: Commit) -> None:
        raise RuntimeError("a broken listener")

    workspace.on_commit(fails)
    workspace.on_commit(lambda _commit: threads.append(threading.current_thread().name))
    writer = threading.Thread(target=agents.add_agent, args=(workspace, "threaded"), name="writer")
    writer.start()
    writer.join()

    assert threads == ["writer"]
    assert workspace.repos.agents.by_name("threaded") is not None


def test_unsubscribed_listeners_hear_nothing_more(workspace: Workspace) -> None:
    commits: list[Commit] = []
    stop = workspace.on_commit(commits.append)
    agents.add_agent(workspace, "first")
    stop()
    agents.add_agent(workspace, "second")
    assert len(commits) == 1


def test_a_change_inside_a_change_keeps_its_audit_records(workspace: Workspace) -> None:
    with workspace.change() as outer:
        outer.record("outer.note", "test:outer")
        with workspace.change() as inner:
            inner.record("inner.note", "test:inner")
    actions = [record["action"] for record in workspace.audit.records()]
    assert actions[-2:] == ["inner.note", "outer.note"]


def test_an_inner_change_s_records_do_not_land_when_the_outer_one_fails(workspace: Workspace) -> None:
    before = len(list(workspace.audit.records()))
    with pytest.raises(RuntimeError), workspace.change() as outer:
        with workspace.change() as inner:
            inner.record("inner.note", "test:inner")
        outer.record("outer.note", "test:outer")
        raise RuntimeError("the outer change fails")
    assert len(list(workspace.audit.records())) == before
