"""tbx server allow|deny without a running container: the switch is kept and audited, and
nothing is started; an engine that does not answer leaves the switch set and says so."""

from __future__ import annotations

import json

from console.model import DesiredState, ServerInstance
from console.services import toolboxes
from console.workspace import Workspace


def add(workspace: Workspace, endpoint: str | None = None) -> None:
    box = toolboxes.add_local(workspace, "local", engine_endpoint=endpoint)
    with workspace.change() as change:
        change.repos.servers.put(ServerInstance(toolbox=box.id, name="notes", desired_state=DesiredState.RUNNING))


def test_a_switch_without_a_container_is_kept_and_starts_nothing(workspace: Workspace, tbx, docker_engine) -> None:  # noqa: ANN001
    add(workspace)
    out = tbx("server", "allow", "local/notes", "roots", "--json")
    assert out.exit_code == 0 and json.loads(out.stdout) == {
        "server": "local/notes", "kind": "roots", "allowed": True, "changed": True, "may_ask": ["roots"],
        "restarted": False}
    assert tbx("server", "allow", "local/notes", "sampling").stdout == \
        "local/notes may now ask agents for sampling (allowed: sampling, roots)\n"
    assert tbx("server", "deny", "local/notes", "roots").stdout == \
        "local/notes may no longer ask agents for roots (allowed: sampling)\n"
    assert tbx("server", "deny", "local/notes", "roots").stdout == \
        "local/notes: roots was already denied (allowed: sampling)\n"
    workspace.refresh()
    assert [s.may_ask for s in workspace.repos.servers] == [["sampling"]]
    assert [(r["action"], r["detail"]["kind"]) for r in workspace.audit.records()
            if r["action"].startswith("server.")] == [
        ("server.allow", "roots"), ("server.allow", "sampling"), ("server.deny", "roots")]
    bad = tbx("server", "allow", "local/notes", "telepathy")
    assert bad.exit_code == 2 and "telepathy" in bad.stderr


def test_an_engine_that_does_not_answer_leaves_the_switch_set(workspace: Workspace, tbx, tmp_path) -> None:  # noqa: ANN001
    add(workspace, f"unix://{tmp_path}/no-engine.sock")
    out = tbx("server", "allow", "local/notes", "elicitation")
    assert out.exit_code == 0 and "may now ask agents for elicitation" in out.stdout
    assert out.stderr.startswith("note: not restarted (cannot reach the Docker engine")
    workspace.refresh()
    assert [s.may_ask for s in workspace.repos.servers] == [["elicitation"]]
