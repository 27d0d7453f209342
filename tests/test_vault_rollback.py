"""An older vault put back is noticed: the rollback anchor, and ``tbx vault restore`` as the way back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from console.errors import VaultRolledBack
from console.model import Agent
from console.paths import Paths
from console.vault import KeySource, Repos, Vault
from console.vault.anchor import GenerationAnchor, Mark, flush_keyring_writes
from tests.conftest import CANARY
from tests.support.keyrings import HangingKeyring, MemoryKeyring

REPO = Path(__file__).resolve().parents[1]
ROLLED_BACK = "is older than the last version this machine wrote (generation"


def _agent(name: str) -> Agent:
    return Agent(name=name, token_hash="0" * 64)


def _add(vault: Vault, name: str) -> None:
    with vault.transaction() as db:
        Repos(db).agents.put(_agent(name))


def _names(vault: Vault) -> list[str]:
    return sorted(a.name for a in Repos(vault.db).agents)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def granted(tbx, memory_keyring: MemoryKeyring):  # noqa: ANN001, ANN201
    """bot granted the local toolbox, then a copy of that vault, then the revoke."""
    assert tbx("init").exit_code == 0
    assert tbx("toolbox", "add", "local", "--local").exit_code == 0
    assert tbx("agent", "add", "bot").exit_code == 0
    assert tbx("grant", "bot", "local").exit_code == 0
    return tbx


def _toolbox_grants(tbx) -> int:  # noqa: ANN001
    [bot] = json.loads(tbx("agent", "list", "--json").stdout)
    return bot["toolbox_grants"]


def _audit(tbx, action: str) -> list[dict]:  # noqa: ANN001
    listing = tbx("audit", "list", "--json")
    assert listing.exit_code == 0, listing.stderr
    return [r for r in json.loads(listing.stdout) if r["action"] == action]


def _refused_everywhere(tbx) -> None:  # noqa: ANN001
    for args in (["agent", "list"], ["access", "bot"], ["grant", "bot", "local"], ["vault", "info"],
                 ["audit", "verify"], ["vault", "rotate"]):
        result = tbx(*args)
        assert result.exit_code == 1, (args, result.stdout)
        assert result.stderr.startswith("error: vault ") and ROLLED_BACK in result.stderr, args
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert "tbx vault restore" in result.stderr and "newest copy" in result.stderr


# -- a copy put back by hand --------------------------------------------------------------


def _copy_then_revoke(tbx, tbx_home: Paths, tmp_path: Path) -> Path:  # noqa: ANN001
    """A copy of the vault holding bot's grant, taken before the grant is revoked."""
    old = tmp_path / "old-vault.tbx"
    shutil.copy2(tbx_home.vault, old)
    assert tbx("revoke", "bot", "local").exit_code == 0
    return old


def test_an_old_copy_put_back_is_refused_and_the_revoke_stays(
    granted, tbx_home: Paths, tmp_path: Path  # noqa: ANN001
) -> None:
    old = _copy_then_revoke(granted, tbx_home, tmp_path)
    newest = tmp_path / "newest-vault.tbx"
    shutil.copy2(tbx_home.vault, newest)

    shutil.copy2(old, tbx_home.vault)
    _refused_everywhere(granted)
    assert tbx_home.vault.read_bytes() == old.read_bytes(), "a refused open changes nothing"

    shutil.copy2(newest, tbx_home.vault)  # the fix the message names: put the newest copy back
    assert _toolbox_grants(granted) == 0


def test_the_backup_put_back_is_refused(granted, tbx_home: Paths) -> None:  # noqa: ANN001
    assert granted("revoke", "bot", "local").exit_code == 0
    shutil.copy2(tbx_home.vault_backup, tbx_home.vault)
    _refused_everywhere(granted)


def test_restore_keeps_a_copy_put_back_on_purpose_as_a_new_audited_version(
    granted, tbx_home: Paths, tmp_path: Path  # noqa: ANN001
) -> None:
    old = _copy_then_revoke(granted, tbx_home, tmp_path)
    highest = json.loads(granted("vault", "info", "--json").stdout)["generation"]
    shutil.copy2(old, tbx_home.vault)
    put_back = json.loads(old.read_bytes().partition(b"\n")[0])["generation"]

    restored = granted("vault", "restore")
    assert restored.exit_code == 0, restored.stderr
    assert f"generation {put_back}" in restored.stdout and f"as generation {highest + 1}" in restored.stdout
    info = json.loads(granted("vault", "info", "--json").stdout)
    assert info["generation"] > highest  # the counter kept growing: restore + its record
    assert _toolbox_grants(granted) == 1, "the older contents are back, on purpose"
    [record] = _audit(granted, "vault.restore")
    assert record["detail"]["from_generation"] == put_back and record["detail"]["to_generation"] == highest + 1
    assert granted("audit", "verify").exit_code == 0
    assert granted("revoke", "bot", "local").exit_code == 0  # and later changes just work


def test_restore_goes_back_to_the_backup_and_can_be_undone(granted, tbx_home: Paths) -> None:  # noqa: ANN001
    assert granted("revoke", "bot", "local").exit_code == 0
    before = json.loads(granted("vault", "info", "--json").stdout)["generation"]
    back = granted("vault", "restore")
    assert back.exit_code == 0, back.stderr
    assert "vault.tbx.bak" in back.stdout and f"generation {before})" in back.stdout
    assert _toolbox_grants(granted) == 1
    # The version it replaced became the backup: restoring again brings the revoke back.
    again = granted("vault", "restore")
    assert again.exit_code == 0, again.stderr
    assert _toolbox_grants(granted) == 0
    records = _audit(granted, "vault.restore")
    assert len(records) == 2
    assert records[0]["detail"]["to_generation"] < records[1]["detail"]["to_generation"]
    assert granted("audit", "verify").exit_code == 0


def test_restore_an_explicit_older_file(granted, tbx_home: Paths, tmp_path: Path) -> None:  # noqa: ANN001
    old = tmp_path / "saved.tbx"
    shutil.copy2(tbx_home.vault, old)
    for name in ("one", "two", "three"):
        assert granted("agent", "add", name).exit_code == 0
    assert granted("revoke", "bot", "local").exit_code == 0
    restored = granted("vault", "restore", str(old))
    assert restored.exit_code == 0, restored.stderr
    assert [a["name"] for a in json.loads(granted("agent", "list", "--json").stdout)] == ["bot"]
    assert _toolbox_grants(granted) == 1
    assert _audit(granted, "vault.restore")[0]["detail"]["source"] == str(old)


def test_restore_refuses_a_copy_of_another_vault(granted, tmp_path: Path) -> None:  # noqa: ANN001
    other = tmp_path / "other.tbx"
    Vault.create(other, KeySource(None))
    refused = granted("vault", "restore", str(other))
    assert refused.exit_code == 2 and "copy of another vault" in refused.stderr
    assert _toolbox_grants(granted) == 1


# -- one process that already has the vault open ------------------------------------------


def test_a_process_never_goes_backwards(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    path = tmp_path / "v.tbx"
    writer = Vault.create(path, KeySource(None), anchor_dir=tmp_path / "state")
    _add(writer, "a")
    reader = Vault.open(path, anchor_dir=tmp_path / "state")  # the gateway, say
    old = path.read_bytes()
    _add(writer, "b")
    assert reader.refresh() and _names(reader) == ["a", "b"]
    # Even with the anchor wiped (keyring entry and file), the process remembers what it saw.
    memory_keyring.entries.clear()
    shutil.rmtree(tmp_path / "state")
    path.write_bytes(old)
    with pytest.raises(VaultRolledBack, match="generation 1 < 2"):
        reader.refresh()
    assert _names(reader) == ["a", "b"], "the last good version stays in use"
    with pytest.raises(VaultRolledBack):
        _add(reader, "c")


def test_another_process_commit_between_reads_is_no_false_alarm(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    """The anchor is read before the file: a commit landing in between is newer, not older."""
    path = tmp_path / "v.tbx"
    writer = Vault.create(path, KeySource(None))
    reader = Vault.open(path)
    stop = threading.Event()

    def commit() -> None:
        for i in range(40):
            _add(writer, f"w{i}")
        stop.set()

    thread = threading.Thread(target=commit)
    thread.start()
    while not stop.is_set():
        reader.refresh()
        Vault.open(path)
    thread.join()


CRASHING_WRITER = """
import os, sys
from pathlib import Path
from console.model import Agent
from console.vault import Repos, Vault
from console.vault.anchor import GenerationAnchor
vault = Vault.open(Path(sys.argv[1]), anchor_dir=Path(sys.argv[2]))
GenerationAnchor.save = lambda *_a: os._exit(9)   # killed after the file, before the anchor
with vault.transaction() as db:
    Repos(db).agents.put(Agent(name="late", token_hash="0" * 64))
"""


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "TBX_HOME": str(tmp_path / "home"),
            "PYTHON_KEYRING_BACKEND": "tests.support.keyrings.FileKeyring",
            "TBX_TEST_KEYRING_FILE": str(tmp_path / "keyring.json")}


def test_a_crash_between_file_and_anchor_is_no_false_alarm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.keyrings import FileKeyring

    env = _env(tmp_path)
    monkeypatch.setenv("TBX_TEST_KEYRING_FILE", env["TBX_TEST_KEYRING_FILE"])
    previous = keyring.get_keyring()
    keyring.set_keyring(FileKeyring())
    try:
        path, state = tmp_path / "v.tbx", tmp_path / "state"
        _add(Vault.create(path, KeySource(None), anchor_dir=state), "early")
        flush_keyring_writes()
        crashed = subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(path), str(state)],
                                 env=env, capture_output=True, text=True, timeout=60)
        assert crashed.returncode == 9, crashed.stderr
        reopened = Vault.open(path, anchor_dir=state)  # the file is ahead of the anchor: fine
        assert _names(reopened) == ["early", "late"]
        assert reopened.header.generation == 2 and '\\"generation\\":1,' in (tmp_path / "keyring.json").read_text()
        _add(reopened, "next")  # and the anchor catches up with the next commit
        backup = path.with_name("v.tbx.bak").read_bytes()
        path.write_bytes(backup)
        with pytest.raises(VaultRolledBack, match="generation 2 < 3"):
            Vault.open(path, anchor_dir=state)
    finally:
        keyring.set_keyring(previous)


def test_the_real_cli_refuses_in_one_line(tmp_path: Path) -> None:
    env = _env(tmp_path)

    def tbx(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "console", *args], env=env, capture_output=True, text=True,
                              timeout=60)

    assert tbx("init").returncode == 0
    assert tbx("agent", "add", "bot").returncode == 0
    home = tmp_path / "home"
    shutil.copy2(home / "vault.tbx.bak", home / "vault.tbx")
    refused = tbx("agent", "list")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("error: vault ") and ROLLED_BACK in refused.stderr
    assert refused.stderr.count("\n") == 1
    kept = tbx("vault", "restore")
    assert kept.returncode == 0, kept.stderr
    assert tbx("agent", "list", "--json").stdout.strip() == "[]"
    # The keyring write comes after the commit, off its path, but before the process ends.
    [record] = [v for k, v in json.loads((tmp_path / "keyring.json").read_text()).items() if "/generation-" in k]
    header = json.loads((home / "vault.tbx").read_bytes().partition(b"\n")[0])
    assert json.loads(record)["generation"] == header["generation"]


# -- where the anchor lives ---------------------------------------------------------------


def test_a_passphrase_vault_is_anchored_in_the_keyring_too(
    tbx, memory_keyring: MemoryKeyring, tbx_home: Paths  # noqa: ANN001
) -> None:
    env = {"TBX_PASSPHRASE": CANARY}
    assert tbx("init", "--passphrase", env=env).exit_code == 0
    assert tbx("agent", "add", "bot", env=env).exit_code == 0
    info = json.loads(tbx("vault", "info", "--json", env=env).stdout)
    assert info["key_source"].startswith("passphrase") and info["rollback_anchor"].startswith("OS keyring")
    flush_keyring_writes()
    [(_service, account)] = memory_keyring.entries
    assert account.startswith("generation-")
    # Whoever can write the files can rewrite the file copy, but not the keyring.
    for copy in tbx_home.state_dir.glob("generation-*.json"):
        copy.write_text(json.dumps({"writer": "x", "generation": 0, "peers": {}}))
    shutil.copy2(tbx_home.vault_backup, tbx_home.vault)
    refused = tbx("agent", "list", env=env)
    assert refused.exit_code == 1 and ROLLED_BACK in refused.stderr


def test_without_a_keyring_the_anchor_is_a_file(tbx, no_keyring: None, tbx_home: Paths) -> None:  # noqa: ANN001
    env = {"TBX_PASSPHRASE": CANARY}
    assert tbx("init", env=env).exit_code == 0
    assert tbx("agent", "add", "bot", env=env).exit_code == 0
    info = tbx("vault", "info", env=env)
    line = next(line for line in info.stdout.splitlines() if line.startswith("rollback_anchor"))
    assert f"file {tbx_home.state_dir}" in line and "only" in line
    doctor = tbx("doctor", env=env)
    line = next(line for line in doctor.stdout.splitlines() if "rollback" in line)
    assert line.startswith("warn") and "only in a file" in line and str(tbx_home.state_dir) in line
    assert "whoever can write your files" in line
    shutil.copy2(tbx_home.vault_backup, tbx_home.vault)  # an accident is still caught
    refused = tbx("agent", "list", env=env)
    assert refused.exit_code == 1 and ROLLED_BACK in refused.stderr
    assert tbx("vault", "restore", env=env).exit_code == 0
    assert tbx("agent", "list", env=env).exit_code == 0


def test_doctor_says_the_anchor_is_in_the_keyring(tbx, memory_keyring: MemoryKeyring) -> None:  # noqa: ANN001
    assert tbx("init").exit_code == 0
    checks = {c["name"]: c for c in json.loads(tbx("doctor", "--json").stdout)}
    assert checks["rollback"]["status"] == "ok" and "OS keyring" in checks["rollback"]["detail"]


class _Hanging(HangingKeyring):
    release = threading.Event()


def test_a_hanging_keyring_costs_one_timeout_then_the_file_is_used(tmp_path: Path, no_keyring: None) -> None:
    path = tmp_path / "v.tbx"
    _add(Vault.create(path, KeySource(passphrase=CANARY), anchor_dir=tmp_path), "a")
    keyring.set_keyring(_Hanging())
    try:
        started = time.monotonic()
        vault = Vault.open(path, lambda _r: CANARY, keyring_timeout=0.3, anchor_dir=tmp_path)
        for name in ("b", "c", "d"):
            _add(vault, name)
        assert time.monotonic() - started < 3, "the keyring is not waited for again"
        assert vault.anchor_description().startswith("file ") and "did not answer" in vault.anchor_description()
    finally:
        _Hanging.release.set()
    path.write_bytes(path.with_name("v.tbx.bak").read_bytes())
    with pytest.raises(VaultRolledBack):
        Vault.open(path, lambda _r: CANARY, anchor_dir=tmp_path)


class _SlowKeyring(MemoryKeyring):
    """A keyring as slow as the Secret Service through ``keyring`` here (~40 ms a write), and then some."""

    def set_password(self, service: str, username: str, password: str) -> None:
        time.sleep(0.5)
        super().set_password(service, username, password)


def test_a_slow_keyring_does_not_slow_the_commit(tmp_path: Path) -> None:
    previous, slow = keyring.get_keyring(), _SlowKeyring()
    keyring.set_keyring(slow)
    try:
        path = tmp_path / "v.tbx"
        vault = Vault.create(path, KeySource(passphrase=CANARY), anchor_dir=tmp_path)
        flush_keyring_writes()
        started = time.monotonic()
        for name in ("a", "b", "c", "d"):
            _add(vault, name)
        assert time.monotonic() - started < 0.5, "four commits, not one keyring write"
        flush_keyring_writes()
        [record] = slow.entries.values()
        assert json.loads(record)["generation"] == 4, "the burst coalesced into the newest record"
    finally:
        keyring.set_keyring(previous)


def test_a_late_keyring_write_never_lowers_the_record(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    """Two processes committing at once: the slower one's older record does not win."""
    newer, older = GenerationAnchor(tmp_path, 1.0), GenerationAnchor(tmp_path, 1.0)
    newer.save("v1", Mark("w", generation=7, stored=True))
    flush_keyring_writes()
    older.save("v1", Mark("w", generation=6, peers={"console": 2}, stored=True))
    flush_keyring_writes()
    [record] = memory_keyring.entries.values()
    assert json.loads(record) == {"writer": "w", "generation": 7, "peers": {"console": 2}}


# -- a toolbox's own gateway: another machine's newer version is not a rollback -------------


def test_a_policy_push_over_the_gateways_own_commits_is_accepted(tmp_path: Path, no_keyring: None,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The console writes the policy vault and ships it; the gateway on the toolbox commits
    audit checkpoints into its copy meanwhile, so its copy counts further than the next push."""
    monkeypatch.setenv("TBX_PASSPHRASE", CANARY)
    console_side, remote = tmp_path / "console" / "vault.tbx", tmp_path / "remote" / "vault.tbx"
    mirror = Vault.create(console_side, KeySource(passphrase=CANARY), anchor_dir=tmp_path / "console-state")
    _add(mirror, "a")
    remote.parent.mkdir()
    shutil.copy2(console_side, remote)
    gateway = Vault.open(remote, anchor_dir=tmp_path / "remote-state")
    for _ in range(3):  # checkpoints
        with gateway.transaction() as db:
            Repos(db).meta.set("audit", {"checkpoint": time.time()})
    first_push = None
    for name in ("b", "c"):
        _add(mirror, name)
        first_push = first_push or console_side.read_bytes()
        shutil.copy2(console_side, remote)
        assert gateway.refresh() and name in _names(gateway)
        assert gateway.header.generation < gateway.anchored_generation
    with gateway.transaction() as db:  # its next commit still counts upwards
        Repos(db).meta.set("audit", {"checkpoint": 1})
    assert gateway.header.generation > mirror.header.generation
    assert Vault.open(remote, anchor_dir=tmp_path / "remote-state").header.generation == gateway.header.generation
    # An older push put back is still an older version, in the process and after a restart.
    remote.write_bytes(first_push)
    with pytest.raises(VaultRolledBack):
        gateway.refresh()
    with pytest.raises(VaultRolledBack):
        Vault.open(remote, anchor_dir=tmp_path / "remote-state")


def test_mark_rules() -> None:
    mark = Mark("me", generation=10, peers={"console": 7, "": 5}, stored=True)
    assert not mark.rolled_back("me", 10) and mark.rolled_back("me", 9)
    assert not mark.rolled_back("console", 8), "newer than anything seen from that writer"
    assert mark.rolled_back("console", 7) and mark.rolled_back("", 5), "versions from before the anchor too"
    assert not mark.rolled_back("stranger", 12)
    fresh = Mark("other", generation=4)
    merged = fresh.merged(mark)
    assert merged.writer == "me" and merged.generation == 10
    assert merged.peers == {"console": 7, "": 5, "other": 4}
    assert Mark.from_json("not json") is None and Mark.from_json(mark.to_json()) == mark
