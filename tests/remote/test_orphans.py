"""Nothing billed is ever forgotten: a droplet tbx made and could not destroy is kept in
the vault, listed by ``tbx toolbox list`` and ``tbx doctor``, destroyed later with retries;
droplets tagged ``tbx`` that no toolbox owns are found and offered. Against the
DigitalOcean simulator through the real client; the CLI as a user types it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import timedelta

import pytest

from console.model import Orphan, OrphanCause, Toolbox, ToolboxKind, utcnow
from console.remote.policy import digest, policy_tables
from console.remote.push_state import PushState, mirror_root
from console.remote.droplets import ProvisionTimeout
from console.services import droplet_orphans as orphans
from console.services import remote_toolboxes as remote
from console.workspace import Workspace
from tests.support.do_sim import DigitalOceanSim, found_by_tbx

TOKEN = "dop_v1_orphans_6c1f0e9d8b7a"


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[DigitalOceanSim]:
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", TOKEN)
    with found_by_tbx(monkeypatch, TOKEN) as s:
        yield s


@pytest.fixture
def ws(workspace: Workspace, sim: DigitalOceanSim) -> Workspace:
    remote.set_api_token(workspace, TOKEN)
    return workspace


def audit_actions(ws: Workspace) -> list[tuple[str, str]]:
    ws.refresh()
    return [(r["action"], r["target"]) for r in ws.audit.records() if r["action"].startswith("droplet.")]


def failed_add(ws: Workspace, sim: DigitalOceanSim, name: str = "cloud") -> int:
    """An add whose droplet never leaves 'new' (so every DELETE is refused): kept as an orphan."""
    sim.stick_in_new = True
    with pytest.raises(ProvisionTimeout) as caught:
        remote.add_droplet(ws, name, region="fra1", api_timeout=0.3, destroy_timeout=0.5)
    assert "it is kept: 'tbx toolbox orphans' lists it" in str(caught.value)
    [droplet_id] = sim.droplets
    return droplet_id


def test_a_droplet_a_failed_add_could_not_delete_is_kept_listed_and_destroyed_later(
        ws: Workspace, sim: DigitalOceanSim, tbx) -> None:  # noqa: ANN001
    droplet_id = failed_add(ws, sim)
    ws.refresh()
    [orphan] = ws.repos.orphans.all()
    assert (orphan.droplet_id, orphan.name, orphan.region, orphan.size) == (droplet_id, "tbx-cloud", "fra1", "s-1vcpu-1gb")
    assert orphan.price_monthly == 6.0 and orphan.cause is OrphanCause.FAILED_ADD and orphan.toolbox == "cloud"
    assert "pending event" in (orphan.error or "")
    assert orphan.droplet_key and len(sim.keys) == 1  # the key stays with the droplet
    private_key = ws.repos.secrets.get(orphan.ssh_key or "").value  # adopting it needs no other key
    assert private_key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert audit_actions(ws) == [("droplet.orphan", f"droplet:{droplet_id}")]
    assert ws.repos.toolboxes.by_name("cloud") is None

    listed = tbx("toolbox", "list")
    assert listed.exit_code == 0 and listed.stderr == ""
    [row] = [line for line in listed.stdout.splitlines() if line.startswith(str(droplet_id))]
    assert row.split()[:6] == [str(droplet_id), "tbx-cloud", "fra1", "s-1vcpu-1gb", "6.00", "failed-add"]
    assert "DROPLETS NO TOOLBOX OWNS (billed, $6.00/month)" in listed.stdout
    [entry] = [e for e in json.loads(tbx("toolbox", "list", "--json").stdout) if e["kind"] == "orphan"]
    assert (entry["droplet_id"], entry["region"], entry["price_monthly"], entry["name"]) == (droplet_id, "fra1", 6.0, "tbx-cloud")
    assert "ssh_key" not in entry

    doctor = {c["name"]: c for c in json.loads(tbx("doctor", "--json").stdout)}
    assert doctor["droplets"]["status"] == "warn"
    assert f"tbx-cloud ({droplet_id}, fra1, $6.00/month)" in doctor["droplets"]["detail"]
    assert "destroy-orphan" in doctor["droplets"]["fix"]

    # Still busy: the destroy retries, then says so and keeps it.
    refused = tbx("toolbox", "destroy-orphan", str(droplet_id), "--yes", "--wait", "0.3")
    assert refused.exit_code == 1 and "could not be deleted" in refused.stderr
    assert f"'tbx toolbox destroy-orphan {droplet_id}' tries again" in refused.stderr

    sim.stick_in_new = False  # the create ends: the droplet can go
    destroyed = tbx("toolbox", "destroy-orphan", str(droplet_id), "--yes")
    assert destroyed.exit_code == 0, destroyed.stderr
    assert f"droplet tbx-cloud ({droplet_id}) destroyed" in destroyed.stdout
    assert sim.droplets == {} and sim.keys == {}
    ws.refresh()
    assert ws.repos.orphans.all() == [] and ws.repos.secrets.get(orphan.ssh_key or "") is None
    assert audit_actions(ws)[-1] == ("droplet.destroy", f"droplet:{droplet_id}")
    assert "DROPLETS NO TOOLBOX OWNS" not in tbx("toolbox", "list").stdout
    everything = "".join(tbx(*args).stdout for args in (("toolbox", "list", "--json"), ("doctor", "--json")))
    assert TOKEN not in everything and private_key not in everything


def test_the_scan_finds_tagged_droplets_no_toolbox_owns(ws: Workspace, sim: DigitalOceanSim, tbx) -> None:  # noqa: ANN001
    home = orphans.home_id(ws)
    lost = sim.create_raw(name="tbx-lost", region="ams3", tags=["tbx", "tbx-toolbox-tb_0a1b2c", f"tbx-home-{home}"])
    legacy = sim.create_raw(name="tbx-old", tags=["tbx"])  # before home tags: taken as ours
    theirs = sim.create_raw(name="tbx-theirs", tags=["tbx", "tbx-home-ffffffffffff"])
    sim.create_raw(name="web", tags=["web"])
    owned = sim.create_raw(name="tbx-owned", tags=["tbx"])
    with ws.change() as change:
        box = change.repos.toolboxes.put(Toolbox(name="owned", kind=ToolboxKind.DROPLET, droplet_id=owned,
                                                 ssh_target="root@203.0.113.9"))
    landed = digest(policy_tables(ws.tables(), box.id))  # its policy is there: nothing to push
    PushState(wanted=landed, installed=landed, installed_access=[]).write(mirror_root(ws, box))

    shown = tbx("toolbox", "orphans")
    assert shown.exit_code == 0 and shown.stderr == "", shown.stderr
    lines = shown.stdout.splitlines()
    assert [line.split()[:5] for line in lines if line.split()[:1] in ([str(lost)], [str(legacy)])] == [
        [str(lost), "tbx-lost", "ams3", "s-1vcpu-1gb", "6.00"], [str(legacy), "tbx-old", "fra1", "s-1vcpu-1gb", "6.00"]]
    assert f"1 droplet(s) tagged tbx by another installation (left alone): tbx-theirs ({theirs}, fra1)" in shown.stdout
    assert "web" not in shown.stdout and "tbx-owned" not in shown.stdout
    ws.refresh()
    found = {o.droplet_id: o for o in ws.repos.orphans}
    assert set(found) == {lost, legacy} and found[lost].toolbox_id == "tb_0a1b2c"
    assert all(o.cause is OrphanCause.FOUND and o.ssh_key is None for o in found.values())
    assert sorted(audit_actions(ws)) == sorted([("droplet.orphan", f"droplet:{lost}"), ("droplet.orphan", f"droplet:{legacy}")])

    again = json.loads(tbx("toolbox", "orphans", "--json").stdout)
    assert sorted(o["droplet_id"] for o in again["orphans"]) == sorted([lost, legacy])
    assert [d["id"] for d in again["other_installations"]] == [theirs]
    assert len(audit_actions(ws)) == 2  # nothing recorded twice
    assert all(query.get("tag_name") == ["tbx"] for m, p, query in sim.queries if p.rstrip("/") == "/v2/droplets")


def test_an_add_that_never_finished_is_found_by_name_before_its_tag(ws: Workspace, sim: DigitalOceanSim) -> None:
    sim.tag_lag = 3600
    dead = subprocess.Popen(["true"])
    dead.wait()
    crashed = Toolbox(name="crashed", kind=ToolboxKind.DROPLET)
    running = Toolbox(name="running", kind=ToolboxKind.DROPLET)
    with orphans.creating(ws, "tbx-running", running):
        notes = ws.paths.state_dir / "remote" / "creating"
        (notes / "tbx-crashed.json").write_text(json.dumps(
            {"name": "tbx-crashed", "toolbox": "crashed", "toolbox_id": crashed.id, "pid": dead.pid, "started": 0}))
        made = sim.create_raw(name="tbx-crashed", tags=["tbx", f"tbx-toolbox-{crashed.id}"])
        sim.create_raw(name="tbx-running", tags=["tbx", f"tbx-toolbox-{running.id}"])
        found = orphans.scan(ws, remote.droplet_api(ws))
        assert [(o.droplet_id, o.toolbox, o.cause) for o in found.found] == [(made, "crashed", OrphanCause.FOUND)]
        assert not (notes / "tbx-crashed.json").exists() and (notes / "tbx-running.json").exists()
        assert any(query.get("name") == ["tbx-crashed"] for _m, _p, query in sim.queries)
    assert not (notes / "tbx-running.json").exists()


def test_a_running_add_is_left_alone_by_a_scan(ws: Workspace, sim: DigitalOceanSim) -> None:
    box = Toolbox(name="busy", kind=ToolboxKind.DROPLET)
    with orphans.creating(ws, "tbx-busy", box):
        sim.create_raw(name="tbx-busy", tags=["tbx", f"tbx-toolbox-{box.id}"])
        assert orphans.scan(ws, remote.droplet_api(ws)).found == []
    assert [o.name for o in orphans.scan(ws, remote.droplet_api(ws)).found] == ["tbx-busy"]


def test_an_orphan_deleted_elsewhere_is_forgotten(ws: Workspace, sim: DigitalOceanSim) -> None:
    with ws.change() as change:
        change.repos.orphans.put(Orphan(droplet_id=412345678, name="tbx-gone", region="fra1", cause=OrphanCause.FOUND,
                                        found=utcnow() - timedelta(hours=1)))
        change.repos.orphans.put(Orphan(droplet_id=412345679, name="tbx-new", region="fra1", cause=OrphanCause.FAILED_ADD))
    scanned = orphans.scan(ws, remote.droplet_api(ws))
    assert [o.droplet_id for o in scanned.orphans] == [412345679]  # a fresh one may only be invisible yet
    assert audit_actions(ws) == [("droplet.gone", "droplet:412345678")]


def test_the_image_is_checked_before_anything_is_made(ws: Workspace, sim: DigitalOceanSim, tbx) -> None:  # noqa: ANN001
    refused = tbx("toolbox", "add", "far", "--droplet", "--image", "debian-10-x64", "--yes")
    assert refused.exit_code == 2
    [line] = refused.stderr.splitlines()
    assert line.startswith("error: DigitalOcean has no image 'debian-10-x64' (retired?); use --image")
    assert "debian-12-x64, fedora-42-x64, ubuntu-24-04-x64" in line
    assert sim.count("POST", "/v2") == 0

    ws.paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    ws.paths.config_file.write_text('[droplet]\nimage = "fedora-42-x64"\n')
    elsewhere = tbx("toolbox", "add", "far", "--droplet", "--region", "lon1", "--yes")
    assert elsewhere.exit_code == 2
    assert "image 'fedora-42-x64' is not available in lon1; pick a region among ams3, fra1, nyc3" in elsewhere.stderr
    ws.paths.config_file.write_text('[droplet]\nimage = "Debian 12"\n')
    bad = tbx("toolbox", "add", "far", "--droplet", "--yes")
    assert bad.exit_code == 1 and "bad setting droplet.image" in bad.stderr
    wrong = tbx("toolbox", "add", "far", "--local", "--image", "debian-12-x64")
    assert wrong.exit_code == 2 and "--region, --size and --image are for --droplet" in wrong.stderr
    assert sim.count("POST", "/v2") == 0


def test_the_configured_image_is_the_one_created(ws: Workspace, sim: DigitalOceanSim) -> None:
    ws.settings.droplet.image = "ubuntu-24-04-x64"
    failed_add(ws, sim)
    assert [body["image"] for body in sim.create_bodies] == ["ubuntu-24-04-x64"]
    assert sim.create_bodies[0]["tags"] == ["tbx", f"tbx-toolbox-{ws.repos.orphans.all()[0].toolbox_id}",
                                            f"tbx-home-{orphans.home_id(ws)}"]
    [key] = sim.keys.values()
    assert key["name"] == "tbx-cloud"  # not tbx-tbx-cloud
