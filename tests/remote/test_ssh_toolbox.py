"""Adopting a host that already runs Docker: ``tbx toolbox add NAME --ssh USER@HOST[:PORT]``."""

from __future__ import annotations

import os
import random
from pathlib import Path

import docker
import pytest

from console.catalog import load_catalog
from console.errors import TbxError
from console.remote.deploy import LABEL_GATEWAY_OF
from console.remote.ssh import SshAuthFailed
from console.remote.sshkeys import generate_keypair
from console.runtime.containers import LABEL_TOOLBOX
from console.services import remote_toolboxes as remote
from console.services import servers
from console.workspace import Workspace
from tests.remote.conftest import wipe_toolbox
from tests.support.sshd import Sshd

pytestmark = [pytest.mark.docker, pytest.mark.passphrase_ways("unset")]


@pytest.fixture
def host(docker_engine) -> Sshd:  # noqa: ANN001
    private, public = generate_keypair("tbx-test")
    sshd = Sshd([public], host=f"127.{random.randint(20, 250)}.9.{random.randint(2, 250)}", port=2222)
    sshd.client_key = private  # type: ignore[attr-defined]
    sshd.start()
    yield sshd
    sshd.close()


def test_adopt_an_ssh_host(workspace: Workspace, host: Sshd) -> None:
    seen: list[str] = []
    added = remote.add_ssh(workspace, "adopted", f"root@{host.host}:{host.port}", host.client_key,
                           accept_host_key=lambda fp: seen.append(fp) or True)
    box = added.toolbox
    try:
        assert seen == [added.host_fingerprint] and box.kind.value == "ssh"
        assert box.ssh_target == f"root@{host.host}:2222" and box.gateway_address == f"https://{host.host}:8443"
        servers.add_server(workspace, "adopted", load_catalog(workspace.paths).get("time"))
        client = docker.from_env()
        assert client.containers.list(filters={"label": f"{LABEL_TOOLBOX}={box.id}"})
        remote.remove_remote(workspace, "adopted")
        for label in (f"{LABEL_TOOLBOX}={box.id}", f"{LABEL_GATEWAY_OF}={box.id}"):
            assert not client.containers.list(all=True, filters={"label": label})
        assert not Path(f"/var/lib/tbx/{box.id}").exists()
        assert workspace.repos.toolboxes.by_name("adopted") is None
        assert not [s for s in workspace.repos.secrets if s.name.startswith("toolbox/adopted/")]
    finally:
        wipe_toolbox(box.id)


def test_refused_host_key_or_login_adds_nothing(workspace: Workspace, host: Sshd) -> None:
    with pytest.raises(TbxError, match="not accepted; nothing was added"):
        remote.add_ssh(workspace, "doubted", f"root@{host.host}:{host.port}", host.client_key,
                       accept_host_key=lambda _fp: False)
    stranger, _ = generate_keypair("stranger")
    with pytest.raises(SshAuthFailed, match="authorized_keys") as failure:
        remote.add_ssh(workspace, "stranger", f"root@{host.host}:{host.port}", stranger)
    assert stranger not in str(failure.value)
    assert [t.name for t in workspace.repos.toolboxes] == []
    mirrors = workspace.paths.state_dir / "remote"
    assert not mirrors.exists() or not os.listdir(mirrors)
