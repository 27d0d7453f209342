"""Adopting a droplet no toolbox owns: it becomes the toolbox it was meant to be, its
gateway deployed, with the SSH key tbx kept for it or one the user gives. The droplets are
real sshd processes on loopback with this machine's Docker engine behind them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from console.model import OrphanCause
from console.remote.sshkeys import generate_keypair
from console.services import remote_toolboxes as remote
from console.workspace import Workspace
from tests.remote.conftest import TOKEN, Cloud, cloud_init_done, kept_after_failed_add

pytestmark = [pytest.mark.docker, pytest.mark.passphrase_ways("unset")]


def test_a_droplet_kept_after_a_failed_add_is_adopted_with_the_key_tbx_kept(cloud_ws: Workspace, cloud: Cloud) -> None:
    ws, sim = cloud_ws, cloud.sim
    droplet_id, address = kept_after_failed_add(ws, cloud, "cloud")
    ws.refresh()
    [orphan] = ws.repos.orphans.all()
    assert orphan.droplet_id == droplet_id and orphan.cause is OrphanCause.FAILED_ADD and orphan.toolbox == "cloud"
    assert orphan.ssh_key and "could not be deleted within 0.5s" in (orphan.error or "")
    assert ws.repos.toolboxes.by_name("cloud") is None

    cloud_init_done(cloud, droplet_id, address)
    lines: list[str] = []
    added = remote.adopt_droplet(ws, orphan.droplet_id, "cloud", progress=lines.append)
    box = added.toolbox
    assert (box.droplet_id, box.id, box.region, box.size) == (orphan.droplet_id, orphan.toolbox_id, "fra1", "s-1vcpu-1gb")
    assert box.ssh_target == f"root@{address}" and added.gateway_url == f"https://{address}:8443"
    assert added.price_monthly == 6.0 and any("gateway up" in line for line in lines)
    ws.refresh()
    assert ws.repos.orphans.all() == [] and ws.repos.secrets.get(orphan.ssh_key) is None
    actions = [r["action"] for r in ws.audit.records() if r["action"].startswith(("droplet.", "toolbox."))]
    assert actions == ["droplet.orphan", "droplet.adopt", "toolbox.add"]  # the last two in one change

    remote.remove_remote(ws, "cloud")  # an ordinary droplet toolbox now
    assert sim.droplets == {} and sim.keys == {}


def test_a_found_droplet_is_adopted_from_the_cli_with_the_users_key(tbx, memory_keyring, cloud: Cloud,  # noqa: ANN001
                                                                    tmp_path: Path) -> None:
    sim = cloud.sim
    assert tbx("init").exit_code == 0
    private, public = generate_keypair("me@laptop")
    identity = tmp_path / "id_ed25519"
    identity.write_text(private)
    identity.chmod(0o600)
    key = requests.post(f"{sim.endpoint}account/keys", json={"name": "mine", "public_key": public},
                        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).json()["ssh_key"]
    sim.active_after = 4.0  # still being created when it is adopted: adopting waits for it
    droplet_id = sim.create_raw(name="tbx-far", tags=["tbx"], ssh_keys=[key["id"]])  # a tbx that died mid-add

    env = {"DIGITALOCEAN_TOKEN": TOKEN}
    found = tbx("toolbox", "orphans", env=env)
    assert found.exit_code == 0 and f"{droplet_id}  tbx-far" in found.stdout, found.stdout + found.stderr
    keyless = tbx("toolbox", "adopt", str(droplet_id), "far")
    assert keyless.exit_code == 2 and "tbx has no SSH key for droplet" in keyless.stderr
    assert "pass --identity FILE" in keyless.stderr

    adopted = tbx("toolbox", "adopt", str(droplet_id), "far", "--identity", str(identity))
    assert adopted.exit_code == 0, adopted.stderr
    assert f"droplet {droplet_id} is new" in adopted.stderr and f"droplet {droplet_id} is active" in adopted.stderr
    assert "SSH host key   SHA256:" in adopted.stdout and "price          $6.00/month" in adopted.stdout
    listed = json.loads(tbx("toolbox", "list", "--json").stdout)
    assert [(e["name"], e["kind"], e.get("droplet_id")) for e in listed if e["name"] == "far"] == [
        ("far", "droplet", droplet_id)]
    assert not [e for e in listed if e["kind"] == "orphan"]

    removed = tbx("toolbox", "remove", "far", "--yes")
    assert removed.exit_code == 0 and [d["id"] for d in sim.deleted] == [droplet_id]
