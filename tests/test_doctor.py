"""``tbx doctor`` against the real engine, and against none."""

from __future__ import annotations

import json

from tests.support.keyrings import MemoryKeyring


def test_doctor_sees_the_engine_and_a_healthy_vault(tbx, docker_engine, memory_keyring: MemoryKeyring) -> None:  # noqa: ANN001
    tbx("init")
    result = tbx("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert result.exit_code == 0, result.stdout
    assert checks["docker engine"]["status"] == "ok"
    assert docker_engine.version in checks["docker engine"]["detail"]
    assert checks["keyring"]["status"] == "ok"
    assert checks["vault"]["status"] == "ok" and checks["audit log"]["status"] == "ok"


def test_doctor_names_the_fix_when_the_engine_is_missing(tbx, memory_keyring: MemoryKeyring) -> None:  # noqa: ANN001
    result = tbx("doctor", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.exit_code == 1
    line = next(line for line in result.stdout.splitlines() if "docker engine" in line)
    assert line.startswith("fail") and "/nonexistent/docker.sock" in line
    assert "fix: install docker.io and start dockerd" in result.stdout
    assert "warn  vault          no vault" in result.stdout and "run 'tbx init'" in result.stdout


def test_doctor_reports_an_unusable_keyring(tbx) -> None:  # noqa: ANN001
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        result = tbx("doctor")
    finally:
        keyring.set_keyring(previous)
    assert "warn  keyring" in result.stdout and "locked by a passphrase" in result.stdout


def test_doctor_warns_of_a_remapped_key_that_names_no_binding(tbx, tbx_home, memory_keyring: MemoryKeyring) -> None:  # noqa: ANN001
    tbx_home.config_file.parent.mkdir(parents=True, exist_ok=True)
    tbx_home.config_file.write_text('[tui.keys]\n"sever.toggle" = "ctrl+s"\n"app.help" = "h"\n')
    result = tbx("doctor", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    line = next(line for line in result.stdout.splitlines() if line.split()[1:2] == ["keys"])
    assert line.startswith("warn") and "'sever.toggle' (did you mean 'server.toggle'?)" in line, result.stdout
    assert "app.help" not in line
    assert "fix: use the binding ids that ? lists in the console" in result.stdout

    tbx_home.config_file.write_text('[tui.keys]\n"server.toggle" = "ctrl+s"\n')
    result = tbx("doctor", "--json", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["keys"]["status"] == "ok" and "1 key(s) remapped" in checks["keys"]["detail"]


def test_doctor_names_server_containers_still_on_a_network(tbx, docker_engine, memory_keyring: MemoryKeyring) -> None:  # noqa: ANN001
    """A server container an older tbx put on a network (all of it) until tbx makes it again."""
    import docker

    from console.runtime.containers import LABEL_MANAGED, LABEL_NAME, LABEL_SERVER

    tbx("init")
    client = docker.from_env()
    old = client.containers.create("tbx-base:test", ["true"], network_mode="host",
                                   labels={LABEL_MANAGED: "true", LABEL_SERVER: "srv_doctor0001", LABEL_NAME: "local/old"})
    try:
        checks = {c["name"]: c for c in json.loads(tbx("doctor", "--json").stdout)}
        assert checks["egress"]["status"] == "warn" and "local/old" in checks["egress"]["detail"]
        assert "tbx server restart local/old" in checks["egress"]["fix"]
    finally:
        old.remove(force=True)
    checks = {c["name"]: c for c in json.loads(tbx("doctor", "--json").stdout)}
    assert checks["egress"]["status"] == "ok"
