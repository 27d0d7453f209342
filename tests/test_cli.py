"""``tbx`` as a script sees it: exit codes, one-line errors, JSON, TBX_HOME."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from console.model import ServerInstance, ToolDef, Trust, tool_pin
from console.paths import Paths
from console.workspace import Workspace
from tests.conftest import CANARY
from tests.support.keyrings import MemoryKeyring


@pytest.fixture
def ready(tbx, memory_keyring: MemoryKeyring):  # noqa: ANN001, ANN201
    assert tbx("init").exit_code == 0
    assert tbx("toolbox", "add", "local", "--local").exit_code == 0
    return tbx


def _seed_server(paths: Paths, tools: list[str], approve: bool = True) -> None:
    """Servers arrive with the runtime (issue 3); here they are written as the runtime would."""
    ws = Workspace.open(paths)
    with ws.change() as change:
        toolbox = change.repos.toolboxes.require("local")
        server = change.repos.servers.put(ServerInstance(toolbox=toolbox.id, name="time", desired_state="running"))
        for name in tools:
            pin = tool_pin(name, f"{name} tool", {"type": "object"}, None, None)
            change.repos.tools.put(ToolDef(server=server.id, name=name, description=f"{name} tool",
                                           input_schema={"type": "object"}, pin=pin,
                                           approved_pin=pin if approve else None,
                                           trust=Trust.APPROVED if approve else Trust.PENDING))


def test_init_twice_is_a_clear_error(ready) -> None:  # noqa: ANN001
    again = ready("init")
    assert again.exit_code == 1
    assert again.stderr.startswith("error: a vault already exists")
    assert again.stderr.count("\n") == 1


def test_commands_before_init_say_to_init(tbx) -> None:  # noqa: ANN001
    result = tbx("agent", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no vault at ")
    assert result.stderr.endswith("vault.tbx: run 'tbx init' to create one\n")


def test_usage_errors_exit_2(ready) -> None:  # noqa: ANN001
    assert ready("grant").exit_code == 2
    bad_name = ready("agent", "add", "Bad Name!")
    assert bad_name.exit_code == 2 and "a-z, 0-9" in bad_name.stderr
    bad_duration = ready("agent", "add", "bot")
    assert bad_duration.exit_code == 0
    result = ready("grant", "bot", "local", "--for", "soon")
    assert result.exit_code == 2 and "bad duration" in result.stderr
    assert ready("grant", "bot", "a/b/c/d").exit_code == 2  # a tool name has no '/'
    assert ready("grant", "bot", "local//x").exit_code == 2
    assert ready("grant", "bot", "local/time/prompt:").exit_code == 2


def test_unknown_names_fail_with_a_hint(ready) -> None:  # noqa: ANN001
    result = ready("grant", "ghost", "local")
    assert result.exit_code == 1
    assert result.stderr == "error: no agent named 'ghost'; 'tbx agent list' shows them\n"


def test_agent_lifecycle_and_json(ready, tbx_home: Paths) -> None:  # noqa: ANN001
    added = ready("agent", "add", "bot", "--json")
    token = json.loads(added.stdout)["token"]
    assert token.startswith("tbx_")
    listing = json.loads(ready("agent", "list", "--json").stdout)
    assert listing[0]["name"] == "bot" and listing[0]["enabled"]
    assert token not in tbx_home.vault.read_bytes().decode("latin-1")
    rotated = json.loads(ready("agent", "rotate", "bot", "--json").stdout)["token"]
    assert rotated != token
    ws = Workspace.open(tbx_home)
    assert ws.policy().authenticate(token) is None
    assert ws.policy().authenticate(rotated) is not None
    assert ready("agent", "disable", "bot").stdout == "agent bot disabled\n"
    assert Workspace.open(tbx_home).policy().authenticate(rotated) is None
    assert ready("agent", "enable", "bot").exit_code == 0
    refused = ready("agent", "remove", "bot")
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert ready("agent", "remove", "bot", "--yes").exit_code == 0
    assert json.loads(ready("agent", "list", "--json").stdout) == []


def test_grant_access_revoke(ready, tbx_home: Paths) -> None:  # noqa: ANN001
    _seed_server(tbx_home, ["now", "convert"])
    ready("agent", "add", "bot")
    tool_grant = ready("grant", "bot", "local/time/now")
    assert tool_grant.exit_code == 0 and "no access to toolbox local yet" in tool_grant.stderr
    access = json.loads(ready("access", "bot", "--json").stdout)
    assert access["toolboxes"][0]["granted"] is False
    assert access["toolboxes"][0]["tools"][0]["reason"] == "no-toolbox-grant"

    ready("grant", "bot", "local")
    access = json.loads(ready("access", "bot", "--json").stdout)
    tools = {t["tool"]: t for t in access["toolboxes"][0]["tools"]}
    assert tools["now"]["allowed"]
    assert not tools["convert"]["allowed"] and tools["convert"]["reason"] == "no-tool-grant"

    ready("grant", "bot", "local/time", "--for", "2h")
    text = ready("access", "bot").stdout
    assert "allow  time/convert" in text and "server-wide grant time/*" in text and "until" in text

    revoked = ready("revoke", "bot", "local/time/convert")
    assert revoked.stdout.startswith("bot held no grant")
    kill = ready("revoke", "bot", "local")
    assert "kept but inactive" in kill.stderr
    access = json.loads(ready("access", "bot", "--json").stdout)
    assert not any(t["allowed"] for tb in access["toolboxes"] for t in tb["tools"])
    ready("grant", "bot", "local")
    assert len(json.loads(ready("access", "bot", "--json").stdout)["toolboxes"][0]["tools"]) == 2


def test_pending_tools_are_denied_with_the_command_to_approve(ready, tbx_home: Paths) -> None:  # noqa: ANN001
    _seed_server(tbx_home, ["now"], approve=False)
    ready("agent", "add", "bot")
    ready("grant", "bot", "local")
    ready("grant", "bot", "local/time")
    text = ready("access", "bot").stdout
    assert "deny   time/now  tool not approved yet ('tbx tools approve local/time/now')" in text


def test_audit_commands(ready, tmp_path: Path, tbx_home: Paths) -> None:  # noqa: ANN001
    ready("agent", "add", "bot")
    ready("grant", "bot", "local")
    records = json.loads(ready("audit", "list", "--json", "--agent", "bot").stdout)
    assert [r["action"] for r in records] == ["agent.add", "grant.toolbox"]
    assert json.loads(ready("audit", "list", "--json", "--since", "1h", "--action", "grant").stdout)[0]["seq"] == 4
    assert ready("audit", "list", "--since", "yesterday-ish").exit_code == 2
    assert ready("audit", "verify").stdout.startswith("ok: 4 records")
    out = tmp_path / "export.jsonl"
    assert ready("audit", "export", str(out)).exit_code == 0
    assert out.read_bytes() == tbx_home.audit_log.read_bytes()

    lines = tbx_home.audit_log.read_bytes().splitlines(keepends=True)
    tbx_home.audit_log.write_bytes(b"".join(lines[:2] + lines[3:]))
    broken = ready("audit", "verify")
    assert broken.exit_code == 1
    assert broken.stderr.startswith("error: audit log") and "record 3" in broken.stderr


def test_tbx_home_relocates_everything(ready, tbx_home: Paths) -> None:  # noqa: ANN001
    located = json.loads(ready("locate", "--json").stdout)
    assert all(value.startswith(str(tbx_home.data_dir)) for value in located.values())
    assert tbx_home.vault.exists() and tbx_home.audit_log.exists()


def test_unexpected_errors_are_one_line_unless_debug(ready, tbx_home: Paths) -> None:  # noqa: ANN001
    tbx_home.config_file.parent.mkdir(parents=True, exist_ok=True)
    tbx_home.config_file.write_text("[vault]\nkeyring_timeout = 'soon'\n")
    result = ready("vault", "passwd")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: bad setting vault.keyring_timeout")


def test_canary_passphrase_never_surfaces(tbx, tbx_home: Paths, tmp_path: Path) -> None:  # noqa: ANN001
    env = {"TBX_PASSPHRASE": CANARY}
    outputs = [
        tbx("init", env=env),
        tbx("toolbox", "add", "local", "--local", env=env),
        tbx("agent", "add", "bot", env=env),
        tbx("grant", "bot", "local", env=env),
        tbx("vault", "passwd", env={**env, "TBX_NEW_PASSPHRASE": CANARY + "-2"}),
        tbx("audit", "list", "--json", env={"TBX_PASSPHRASE": CANARY + "-2"}),
        tbx("vault", "info", "--json", env={"TBX_PASSPHRASE": CANARY + "-2"}),
        tbx("agent", "list", env={"TBX_PASSPHRASE": "wrong passphrase"}),
        tbx("doctor", "--json", env={"TBX_PASSPHRASE": CANARY + "-2"}),
    ]
    assert [o.exit_code for o in outputs[:7]] == [0] * 7
    assert outputs[7].exit_code == 1 and "wrong passphrase" in outputs[7].stderr
    export = tmp_path / "audit.jsonl"
    tbx("audit", "export", str(export), env={"TBX_PASSPHRASE": CANARY + "-2"})
    haystacks = [o.stdout + o.stderr for o in outputs]
    for path in tbx_home.data_dir.rglob("*"):
        if path.is_file():
            haystacks.append(path.read_bytes().decode("latin-1"))
    haystacks.append(export.read_text())
    assert not [h for h in haystacks if CANARY in h]


def test_python_m_console_runs(tbx_home: Paths) -> None:
    result = subprocess.run([sys.executable, "-m", "console", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("tbx, version")


def test_vault_rotate_and_restore_commands(ready, tbx_home: Paths) -> None:  # noqa: ANN001
    ready("agent", "add", "bot")
    info = json.loads(ready("vault", "info", "--json").stdout)
    rotated = ready("vault", "rotate")
    assert rotated.exit_code == 0 and "new data key" in rotated.stdout
    assert json.loads(ready("vault", "info", "--json").stdout)["key_id"] != info["key_id"]
    blob = bytearray(tbx_home.vault.read_bytes())
    blob[-3] ^= 0xFF
    tbx_home.vault.write_bytes(bytes(blob))
    damaged = ready("agent", "list")
    assert damaged.exit_code == 1 and "tbx vault restore" in damaged.stderr
    restored = ready("vault", "restore")
    assert restored.exit_code == 0 and "damaged file is kept" in restored.stdout
    assert [a["name"] for a in json.loads(ready("agent", "list", "--json").stdout)] == ["bot"]
    assert ready("audit", "verify").exit_code == 0
