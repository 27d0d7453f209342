"""A DigitalOcean that is a simulator whose droplets are real OpenSSH servers on loopback
addresses, with this machine's Docker engine behind them."""

from __future__ import annotations

import itertools
import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest

from console.remote.cloudinit import READY_MARKER
from console.remote import policy
from console.remote.deploy import LABEL_GATEWAY_OF
from console.runtime.containers import LABEL_TOOLBOX
from console.services import remote_toolboxes as remote
from console.workspace import Workspace
from tests.support.do_sim import DigitalOceanSim
from tests.support.sshd import Sshd

TOKEN = "dop_v1_canary_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
USER_PASSPHRASE = "user-passphrase-of-the-console-" + "3e1d"
"""``TBX_PASSPHRASE`` in the second run of each remote test: the user's, never a gateway's."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every remote test that has a user's installation (``tbx_home``) runs twice: with
    ``TBX_PASSPHRASE`` unset, and as a script runs tbx: ``TBX_PASSPHRASE`` set (``tbx
    init`` then locks the vault with it) and every command a new process, so every policy
    mirror is opened afresh rather than kept open by the test's one process. Mirrors have
    their own key, which the environment must not replace (issue 12): with it set, no
    policy reached a toolbox. ``-k TBX_PASSPHRASE-set`` picks one way.

    A module marked ``passphrase_ways("set")`` (or ``"unset"``) runs one way only: a
    feature built on the push and mirror that the twice-run modules cover both ways, whose
    own set-up costs a minute (CI has 40 minutes for everything)."""
    if "tbx_home" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("passphrase_ways")
        ways = ("unset", "set") if marker is None else marker.args
        if not ways or set(ways) - {"unset", "set"}:
            raise pytest.UsageError(f"passphrase_ways takes 'unset' and/or 'set', not {ways!r}")
        metafunc.parametrize("passphrase_env", [way == "set" for way in ways],
                             ids=[f"TBX_PASSPHRASE-{way}" for way in ways], indirect=True)


class _NothingKept(dict):
    """In place of the mirrors a process keeps open: each open is a new process's."""

    def __setitem__(self, key: object, value: object) -> None:
        pass


@pytest.fixture(autouse=True)
def passphrase_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    if not getattr(request, "param", False):
        return False
    request.getfixturevalue("tbx_home")  # it unsets TBX_PASSPHRASE: set it after
    monkeypatch.setenv("TBX_PASSPHRASE", USER_PASSPHRASE)
    monkeypatch.setattr(policy, "_OPENED", _NothingKept())
    return True


SIM_TOKEN = "dop_v1_test"


@pytest.fixture
def sim() -> Iterator[DigitalOceanSim]:
    """The DigitalOcean simulator alone (no sshd behind its droplets), droplets active in 0.1 s."""
    with DigitalOceanSim(token=SIM_TOKEN) as s:
        s.active_after = 0.1
        yield s


@pytest.fixture
def api(sim: DigitalOceanSim):  # noqa: ANN201 - DropletApi
    from console.remote.droplets import DropletApi

    return DropletApi(SIM_TOKEN, endpoint=sim.endpoint, request_timeout=5)


@dataclass
class Cloud:
    sim: DigitalOceanSim
    hosts: dict[int, Sshd] = field(default_factory=dict)

    def sshd_of(self, droplet_id: int) -> Sshd:
        return self.hosts[droplet_id]


def _toolbox_id(droplet: dict) -> str | None:
    for tag in droplet.get("tags", []):
        if tag.startswith("tbx-toolbox-"):
            return tag.removeprefix("tbx-toolbox-")
    return None


def wipe_toolbox(toolbox_id: str) -> None:
    """What destroying a droplet does to what ran on it (here: this machine's engine)."""
    client = docker.from_env()
    for label in (f"{LABEL_TOOLBOX}={toolbox_id}", f"{LABEL_GATEWAY_OF}={toolbox_id}"):
        for container in client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
    shutil.rmtree(f"/var/lib/tbx/{toolbox_id}", ignore_errors=True)


@pytest.fixture
def cloud(docker_engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:  # noqa: ANN001
    if os.getuid() != 0:
        pytest.fail("the droplet simulation runs sshd on port 22 of loopback addresses: run the tests as root")
    # A /24 of loopback per test run, so droplets of runs that overlap never share an address.
    net = random.randint(20, 250)
    addresses = (f"127.{net}.{n // 250}.{n % 250 + 2}" for n in itertools.count())
    cloud = Cloud(sim=None)  # type: ignore[arg-type]

    def provision(droplet: dict) -> str:
        ip = next(addresses)
        sshd = Sshd(cloud.sim.public_keys_of(droplet), host=ip, port=22)
        sshd.start()
        cloud.hosts[droplet["id"]] = sshd
        # cloud-init's last step on a real droplet.
        Path(READY_MARKER).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        Path(READY_MARKER).touch()
        return ip

    def deprovision(droplet: dict) -> None:
        sshd = cloud.hosts.pop(droplet["id"], None)
        if sshd is not None:
            sshd.close()
        toolbox_id = _toolbox_id(droplet)
        if toolbox_id:
            wipe_toolbox(toolbox_id)

    before = _gateway_containers()
    with DigitalOceanSim(token=TOKEN, provision=provision, deprovision=deprovision) as sim:
        sim.active_after = 0.2
        cloud.sim = sim
        monkeypatch.setenv("DIGITALOCEAN_END_POINT", sim.endpoint)
        try:
            yield cloud
        finally:
            for droplet_id in list(cloud.hosts):
                deprovision({"id": droplet_id, "tags": sim.droplets.get(droplet_id, {}).get("tags", [])})
            # A droplet adopted without a tbx-toolbox- tag (made by hand, or by a tbx that died
            # mid-add) ran a gateway its tags cannot name: what this test started goes too.
            for toolbox_id in _gateway_containers() - before:
                wipe_toolbox(toolbox_id)


def _gateway_containers() -> set[str]:
    """The toolboxes whose gateway container this machine's engine holds."""
    client = docker.from_env()
    return {c.labels[LABEL_GATEWAY_OF] for c in client.containers.list(all=True, filters={"label": LABEL_GATEWAY_OF})}


@pytest.fixture
def cloud_ws(workspace: Workspace, cloud: Cloud) -> Workspace:
    remote.set_api_token(workspace, TOKEN)
    return workspace


def kept_after_failed_add(ws: Workspace, cloud: Cloud, name: str) -> tuple[int, str]:
    """Add droplet toolbox ``name`` and fail: its sshd does not come up (a slow cloud-init)
    and a power cycle holds the droplet while the clean-up tries to delete it, so it is kept
    as an orphan with its key. Returns the droplet's id and address."""
    from console.errors import TbxError

    sim = cloud.sim
    address = f"127.{random.randint(20, 250)}.250.{random.randint(2, 250)}"
    hook, sim.provision = sim.provision, lambda droplet: address

    def progress(line: str) -> None:
        if line.startswith("destroying droplet"):
            sim.locked.update(sim.droplets)

    try:
        remote.add_droplet(ws, name, ssh_timeout=2, destroy_timeout=0.5, progress=progress)
    except TbxError as exc:
        assert "it is kept: 'tbx toolbox orphans' lists it" in str(exc), exc
    else:
        raise AssertionError("the add did not fail")
    finally:
        sim.provision = hook
    sim.locked.clear()
    [droplet_id] = [d for d in sim.droplets if sim.droplets[d]["name"] == f"tbx-{name}"]
    return droplet_id, address


def cloud_init_done(cloud: Cloud, droplet_id: int, address: str) -> None:
    """The droplet's sshd comes up at last, cloud-init's ready marker written."""
    sshd = Sshd(cloud.sim.public_keys_of(cloud.sim.droplets[droplet_id]), host=address, port=22)
    sshd.start()
    cloud.hosts[droplet_id] = sshd
    Path(READY_MARKER).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    Path(READY_MARKER).touch()
