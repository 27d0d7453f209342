"""Remote toolboxes: a DigitalOcean droplet made for the purpose, or an SSH host adopted.

Adding one is a sequence of steps that each make something outside the vault — a
droplet, an SSH key at DigitalOcean, files and containers on the host. The toolbox is
not recorded until all of them worked; a failure undoes what was made, and a droplet
that cannot be deleted is kept in the vault as an orphan (``droplet_orphans``), so the
user is never billed for a droplet the console has forgotten. An orphan can be adopted:
it becomes the toolbox it was meant to be.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from console.errors import AlreadyExists, NotFound, TbxError, UsageError
from console.model import Orphan, Secret, Toolbox, ToolboxKind, check_name
from console.workspace import Workspace

if TYPE_CHECKING:  # asyncssh loads in ~0.1 s: only commands that use SSH pay for it
    from console.remote.tunnel import Tunnel

Progress = Callable[[str], None]
DO_TOKEN_SECRET = "digitalocean/api-token"
DEFAULT_REGION = "fra1"
DEFAULT_SIZE = "s-1vcpu-1gb"


def _quiet(_line: str) -> None:
    pass


# -- the DigitalOcean API token --------------------------------------------------------

def set_api_token(ws: Workspace, token: str) -> None:
    token = token.strip()
    if not token:
        raise UsageError("the DigitalOcean API token is empty: create one at cloud.digitalocean.com/account/api/tokens")
    with ws.change() as change:
        old = [s.id for s in change.repos.secrets if s.name == DO_TOKEN_SECRET]
        change.repos.secrets.delete(old)
        change.repos.secrets.put(Secret(name=DO_TOKEN_SECRET, value=token))
        change.record("digitalocean.token", "digitalocean", detail={"replaced": bool(old)})


def api_token(ws: Workspace) -> str | None:
    found = [s for s in ws.repos.secrets if s.name == DO_TOKEN_SECRET]
    return found[0].value if found else None


def droplet_api(ws: Workspace, **options: float):  # noqa: ANN201 - DropletApi, imported lazily (requests)
    """``options``: DropletApi's timeouts (a scan at start-up waits less)."""
    from console.remote.droplets import DropletApi

    token = api_token(ws)
    if token is None:
        raise NotFound("no DigitalOcean API token in the vault: set DIGITALOCEAN_TOKEN or let 'tbx toolbox add --droplet' ask")
    return DropletApi(token, **options)


# -- adding ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Added:
    toolbox: Toolbox
    host_fingerprint: str
    gateway_url: str
    gateway_fingerprint: str
    price_monthly: float | None = None


def _check_new(ws: Workspace, name: str) -> None:
    check_name("toolbox", name)
    if ws.repos.toolboxes.by_name(name):
        raise AlreadyExists(f"a toolbox named {name!r} exists; pick another name")


def _wait_for_ssh(target: str, key: str, socket_dir, timeout: float, progress: Progress) -> Tunnel:  # noqa: ANN001
    """A fresh droplet takes a while to answer on port 22; keep knocking until it does."""
    from console.remote.ssh import SshTarget, SshUnreachable
    from console.remote.tunnel import Tunnel

    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            return Tunnel.open(SshTarget.parse(target), key, None, socket_dir=socket_dir, timeout=10)
        except SshUnreachable:
            if time.monotonic() > deadline:
                raise
            if not told:
                progress(f"waiting for SSH on {target}")
                told = True
            time.sleep(1.0)


def _wait_for_docker(tunnel: Tunnel, timeout: float, progress: Progress, marker: str | None) -> None:
    """cloud-init installs and starts Docker, then writes its ready marker."""
    deadline = time.monotonic() + timeout
    check = f"test -e {marker} && test -S /var/run/docker.sock" if marker else "test -S /var/run/docker.sock"
    told = False
    while True:
        if tunnel.run(check, timeout=20).exit_status == 0:
            return
        if time.monotonic() > deadline:
            raise TbxError(f"Docker did not come up on the host within {timeout:.0f}s (cloud-init still running or failed); "
                           "log in with SSH and look at /var/log/cloud-init-output.log")
        if not told:
            progress("waiting for cloud-init to install and start Docker")
            told = True
        time.sleep(2.0)


def _finish(ws: Workspace, toolbox: Toolbox, key_text: str, tunnel: Tunnel, progress: Progress,
            adopted: Orphan | None = None) -> Added:
    """Deploy the gateway, then record the toolbox with its secrets in one change (a record
    of its droplet as an orphan goes in the same change)."""
    from console.services.droplet_orphans import forget_in

    from console.remote.deploy import deploy_gateway, gateway_host
    from console.remote.policy import Mirror
    from console.remote.tls import fingerprint, self_signed
    from console.runtime.containers import Engine

    ssh_secret = Secret(name=f"toolbox/{toolbox.name}/ssh-key", value=key_text)
    gateway_secret = Secret(name=f"toolbox/{toolbox.name}/gateway-vault", value=secrets.token_urlsafe(32))
    cert, key = self_signed(gateway_host(toolbox))
    toolbox.ssh_key, toolbox.gateway_secret, toolbox.gateway_cert = ssh_secret.id, gateway_secret.id, cert
    toolbox.ssh_host_key = tunnel.host_key
    mirror = Mirror(ws.paths.state_dir / "remote" / toolbox.id, gateway_secret.value)
    tables = {**ws.tables()}
    tables["toolboxes"] = {**tables.get("toolboxes", {}), toolbox.id: toolbox.model_dump(mode="json")}
    engine = Engine(tunnel.endpoint)
    try:
        toolbox.gateway_address = deploy_gateway(ws, toolbox, tunnel, engine, cert, key, progress,
                                                 mirror=mirror, tables=tables)
    finally:
        engine.close()
    with ws.change() as change:
        if change.repos.toolboxes.by_name(toolbox.name):
            raise AlreadyExists(f"a toolbox named {toolbox.name!r} was added meanwhile")
        change.repos.secrets.put(ssh_secret)
        change.repos.secrets.put(gateway_secret)
        change.repos.toolboxes.put(toolbox)
        forget_in(change.repos, toolbox.droplet_id)
        if adopted is not None:
            change.record("droplet.adopt", f"droplet:{adopted.droplet_id}",
                          detail={"toolbox": toolbox.name, "region": adopted.region, "size": adopted.size,
                                  "price_monthly": adopted.price_monthly, "cause": adopted.cause.value})
        change.record("toolbox.add", f"toolbox:{toolbox.name}", detail={
            "kind": toolbox.kind.value, "ssh": toolbox.ssh_target, "droplet": toolbox.droplet_id,
            "region": toolbox.region, "size": toolbox.size, "host_key": tunnel.fingerprint,
            "gateway": toolbox.gateway_address, "tls": fingerprint(cert),
        })
    return Added(toolbox, tunnel.fingerprint, toolbox.gateway_address or "", fingerprint(cert))


def add_ssh(ws: Workspace, name: str, target: str, private_key: str, progress: Progress | None = None,
            accept_host_key: Callable[[str], bool] | None = None) -> Added:
    """Adopt a host that already runs Docker. ``accept_host_key`` sees the fingerprint
    on first contact (trust on first use) and may refuse it."""
    from console.remote.links import socket_dir
    from console.remote.ssh import SshTarget
    from console.remote.tunnel import Tunnel

    progress = progress or _quiet
    _check_new(ws, name)
    ssh = SshTarget.parse(target)
    progress(f"connecting to {ssh}")
    with Tunnel.open(ssh, private_key, None, socket_dir=socket_dir(), timeout=15) as tunnel:
        progress(f"host key {tunnel.fingerprint}")
        if accept_host_key is not None and not accept_host_key(tunnel.fingerprint):
            raise TbxError(f"host key {tunnel.fingerprint} of {ssh} not accepted; nothing was added")
        _wait_for_docker(tunnel, 10, progress, marker=None)
        toolbox = Toolbox(name=name, kind=ToolboxKind.SSH, ssh_target=str(ssh))
        return _finish(ws, toolbox, private_key, tunnel, progress)


def add_droplet(ws: Workspace, name: str, *, region: str = DEFAULT_REGION, size: str = DEFAULT_SIZE,
                image: str | None = None, progress: Progress | None = None, ssh_timeout: float = 600,
                api_timeout: float = 300, destroy_timeout: float = 180) -> Added:
    """Create a droplet with its own SSH key and cloud-init, wait for SSH and Docker,
    run the gateway on it, record it. ``image`` None: the ``[droplet] image`` setting. Any
    failure destroys the droplet and its key; a droplet that cannot be destroyed within
    ``destroy_timeout`` seconds is kept as an orphan, and the error says so."""
    from console.remote.cloudinit import cloud_init
    from console.remote.droplets import Leftover, key_fingerprint
    from console.remote.sshkeys import generate_keypair
    from console.services.droplet_orphans import VaultKeeper, creating, home_id, still_there

    progress = progress or _quiet
    _check_new(ws, name)
    api = droplet_api(ws)
    price = api.price(size)
    private_key, public_key = generate_keypair(f"tbx-{name}")
    toolbox = Toolbox(name=name, kind=ToolboxKind.DROPLET, region=region, size=size,
                      droplet_key=key_fingerprint(public_key))
    keeper = VaultKeeper(ws, toolbox, price, private_key)
    droplet_name = f"tbx-{name}"
    with creating(ws, droplet_name, toolbox):
        droplet = api.provision(name=droplet_name, region=region, size=size, image=image or ws.settings.droplet.image,
                                public_key=public_key, user_data=cloud_init(), toolbox_id=toolbox.id, home=home_id(ws),
                                timeout=api_timeout, destroy_budget=destroy_timeout, progress=progress, keeper=keeper)
        try:
            added = _bring_up(ws, toolbox, droplet, private_key, progress, ssh_timeout)
        except BaseException as exc:
            progress(f"destroying droplet {droplet.id} after the failure")
            leftover = Leftover(droplet.id, droplet_name, region, size, toolbox.droplet_key, str(exc))
            try:
                left = api.destroy_kept(leftover, keeper, fresh=False, budget=destroy_timeout, progress=progress)
            finally:
                _forget_mirror(ws, toolbox)
            if left and isinstance(exc, Exception):
                raise still_there(exc, left) from exc
            raise
    return Added(added.toolbox, added.host_fingerprint, added.gateway_url, added.gateway_fingerprint, price)


def _bring_up(ws: Workspace, toolbox: Toolbox, droplet, private_key: str, progress: Progress,  # noqa: ANN001
              ssh_timeout: float, adopted: Orphan | None = None) -> Added:
    """A droplet that is active: wait for SSH and Docker (cloud-init's ready marker), run the
    gateway, record the toolbox."""
    from console.remote.cloudinit import READY_MARKER
    from console.remote.links import socket_dir

    if not droplet.ip:
        raise TbxError(f"droplet {droplet.id} has no public IPv4 address")
    toolbox.droplet_id = droplet.id
    toolbox.ssh_target = f"root@{droplet.ip}"
    with _wait_for_ssh(toolbox.ssh_target, private_key, socket_dir(), ssh_timeout, progress) as tunnel:
        progress(f"host key {tunnel.fingerprint} (pinned)")
        _wait_for_docker(tunnel, ssh_timeout, progress, marker=READY_MARKER)
        return _finish(ws, toolbox, private_key, tunnel, progress, adopted)


def adopt_droplet(ws: Workspace, droplet_id: int, name: str, private_key: str | None = None,
                  progress: Progress | None = None, ssh_timeout: float = 600) -> Added:
    """Make an orphaned droplet the toolbox ``name``: with the SSH key tbx made for it (kept
    with the orphan), else ``private_key`` (one that logs in as root). It keeps the toolbox
    id its tag names when that id is free. A failure changes nothing: it stays an orphan."""
    from console.remote.droplets import ResourceGone
    from console.services.droplet_orphans import require

    progress = progress or _quiet
    _check_new(ws, name)
    orphan = require(ws, droplet_id)
    kept = ws.repos.secrets.get(orphan.ssh_key or "")
    key_text = private_key or (kept.value if kept is not None else None)
    if key_text is None:
        raise UsageError(f"tbx has no SSH key for droplet {droplet_id} (it was found, not left by a failed add); "
                         "pass --identity FILE with a key that logs in as root")
    api = droplet_api(ws)
    try:
        droplet = api.droplet(droplet_id)
    except ResourceGone:
        raise NotFound(f"DigitalOcean has no droplet {droplet_id} any more; 'tbx toolbox orphans' looks again") from None
    if droplet.status == "new":  # its create still runs (tbx stopped while waiting for it)
        droplet = api.wait_active(droplet_id, droplet.region, timeout=ssh_timeout, progress=progress)
    elif droplet.status != "active":
        raise TbxError(f"droplet {droplet_id} is {droplet.status}, not active; power it on at "
                       "cloud.digitalocean.com/droplets and try again")
    toolbox_id = orphan.toolbox_id if orphan.toolbox_id and ws.repos.toolboxes.get(orphan.toolbox_id) is None else None
    toolbox = Toolbox(name=name, kind=ToolboxKind.DROPLET, region=droplet.region, size=droplet.size,
                      droplet_key=orphan.droplet_key, **({"id": toolbox_id} if toolbox_id else {}))
    progress(f"adopting droplet {droplet_id} ({droplet.region}, {droplet.size}) as toolbox {name}")
    try:
        added = _bring_up(ws, toolbox, droplet, key_text, progress, ssh_timeout, adopted=orphan)
    except BaseException:
        _forget_mirror(ws, toolbox)
        raise
    return Added(added.toolbox, added.host_fingerprint, added.gateway_url, added.gateway_fingerprint,
                 droplet.price_monthly)


def _forget_mirror(ws: Workspace, toolbox: Toolbox) -> None:
    import shutil

    shutil.rmtree(ws.paths.state_dir / "remote" / toolbox.id, ignore_errors=True)


# -- keeping in step -------------------------------------------------------------------

@dataclass(frozen=True)
class Synced:
    toolbox: str
    pushed: bool
    push_seconds: float
    pulled: int
    renewed: tuple[str, ...] = ()
    """Servers handed a refreshed connection token."""


def sync(ws: Workspace, toolbox: Toolbox, tunnel: Tunnel | None = None) -> Synced:
    """Hand servers whose connection token is about to expire a fresh one (the gateway on
    the toolbox holds no OAuth app or refresh token, so the console does it), push the
    policy if it changed (or is still pending) — with the fresh token, which the gateway
    there hands a server its engine restarts — and pull the gateway's new audit records."""
    from console.remote.audit_pull import pull_audit
    from console.remote.links import open_tunnel
    from console.remote.push import push_changes
    from console.services.connection_upkeep import keep_fresh

    renewed = keep_fresh(ws, {toolbox.id}) if any(s.connection for s in ws.repos.servers.in_toolbox(toolbox.id)) else []
    own = tunnel is None
    link = tunnel or open_tunnel(ws, toolbox)
    try:
        report = push_changes(ws, tunnels={toolbox.id: link}, only=[toolbox.id])
        if report.failed:
            raise TbxError(f"{toolbox.name}: {report.failed[0].error}")
        pulled = pull_audit(ws, toolbox, link)
    finally:
        if own:
            link.close()
    seconds = sum(o.seconds for o in report.outcomes)
    return Synced(toolbox.name, bool(report.outcomes), seconds, pulled, tuple(renewed))


# -- removing --------------------------------------------------------------------------

def remove_remote(ws: Workspace, name: str, progress: Progress | None = None) -> Toolbox:
    """Pull the last audit records, remove our containers and files from the host (an
    adopted one) or destroy the droplet, then forget the toolbox."""
    from console.remote.deploy import remote_home
    from console.services.toolboxes import remove_toolbox

    progress = progress or _quiet
    toolbox = ws.repos.toolboxes.require(name)
    if not toolbox.is_remote:
        raise UsageError(f"{name} is not a remote toolbox")
    try:
        sync(ws, toolbox)
    except TbxError as exc:
        progress(f"could not pull the last audit records: {exc}")
    if toolbox.kind is ToolboxKind.DROPLET and toolbox.droplet_id is not None:
        progress(f"destroying droplet {toolbox.droplet_id}")
        # Retried while the droplet is busy; if it still cannot be deleted, the toolbox stays.
        droplet_api(ws).destroy(toolbox.droplet_id, toolbox.droplet_key, progress=progress)
    else:
        from console.remote.links import open_tunnel
        from console.runtime.containers import LABEL_TOOLBOX, Engine

        from console.remote.deploy import LABEL_GATEWAY_OF

        with open_tunnel(ws, toolbox) as tunnel:
            engine = Engine(tunnel.endpoint)
            try:
                for label in (f"{LABEL_TOOLBOX}={toolbox.id}", f"{LABEL_GATEWAY_OF}={toolbox.id}"):
                    for found in engine.client.containers.list(all=True, filters={"label": label}):
                        progress(f"removing container {found.name}")
                        engine.remove(found.id)
            finally:
                engine.close()
            tunnel.run(f"rm -rf {remote_home(toolbox)}")
    remove_toolbox(ws, name)
    with ws.change() as change:
        change.repos.secrets.delete([s for s in (toolbox.ssh_key, toolbox.gateway_secret) if s])
    _forget_mirror(ws, toolbox)
    return toolbox
