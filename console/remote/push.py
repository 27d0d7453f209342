"""Getting a policy change to every remote toolbox's gateway: at once, in parallel, or loudly not.

What a toolbox's gateway should hold is computed locally (``policy_tables``) and compared,
by digest, with what the toolbox last confirmed it has: only toolboxes whose policy
changed are contacted, all of them at once, each over one SSH command that ships the
mirror vault and swaps it in under the gateway's own vault lock.

Each toolbox's state is a small file beside its mirror (``push.json``): the digest wanted
and the one installed, whether the pending change takes access away, the last failure,
and when a change landed. A change that takes access away and cannot land makes the
command fail and is retried in the background until it lands (``console.remote.retrier``);
a revoke that silently does not revoke is the one failure this product must never have.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from console.errors import NotFound, TbxError
from console.model import Toolbox
from console.policy import CompiledPolicy
from console.remote.policy import REMOTE_ROOT, SIGN_IN_HEADER, Mirror, Tables, digest, policy_tables
from console.remote.push_state import PushState, mirror_root, push_lock
from console.remote.ssh import SshError, SshLink, SshTarget
from console.remote.tunnel import Tunnel
from console.workspace import Workspace

CONNECT_TIMEOUT = 10.0
INSTALL = ("umask 077 && mkdir -p {home} && cd {home} && cat > vault.tbx.push && "
           "flock -w 30 vault.tbx.lock mv -f vault.tbx.push vault.tbx")
"""One command: the new policy vault arrives on stdin and replaces the old one under the
gateway's vault lock, so a write of the gateway's (an audit checkpoint) cannot interleave."""


Carrier = Callable[[str, bytes], Awaitable[None]]
"""Runs one command on a toolbox with bytes on its stdin; raises if it did not succeed."""


class PushFailed(TbxError):
    """A change that takes access away did not reach every toolbox."""


# -- what each toolbox should hold ---------------------------------------------------------


def access_of(tables: Tables) -> list[str]:
    """Who may use what through this policy, as opaque fingerprints: (agent token, server,
    item, grant end). What an installed policy has and the next one lacks is access that
    change takes away: a revoke, a disabled or removed agent, a rotated token, the kill
    switch, a blocked item, a shortened grant, a host off a server's egress allow-list."""
    policy = CompiledPolicy.compile(tables)
    found = set()
    for agent_id, agent in tables.get("agents", {}).items():
        # At time 0 every dated grant is still valid: expiry is the gateway's to enforce,
        # and the grant's end is part of the fingerprint instead.
        for server_id, ref in policy.visible_items(agent_id, 0.0):
            decision = policy.check(agent_id, server_id, ref, 0.0)
            line = f"{agent['token_hash']}|{server_id}|{ref}|{decision.expires}"
            found.add(hashlib.sha256(line.encode()).hexdigest()[:32])
    # A host taken off a server's egress allow-list (or its egress turned off) is access
    # taken away too: the server could still reach it until the droplet has the change.
    for server_id, server in tables.get("servers", {}).items():
        if server.get("network") == "egress":
            for entry in server.get("egress") or []:
                found.add(hashlib.sha256(f"egress|{server_id}|{entry}".encode()).hexdigest()[:32])
        # So is a remote server's sign-in taken off (the server or its connection removed,
        # the grant refused): the droplet would go on calling with the token until it lands.
        # Its slot, not its value: a refreshed token takes nothing away.
        handed = (server.get("secret_refs") or {}).get(SIGN_IN_HEADER)
        if server.get("kind") == "remote" and server.get("connection") and handed:
            found.add(hashlib.sha256(f"sign-in|{server_id}|{handed}".encode()).hexdigest()[:32])
    return sorted(found)


def remote_home(toolbox_id: str) -> str:
    return f"{REMOTE_ROOT}/{toolbox_id}"


def install_command(toolbox_id: str) -> str:
    return INSTALL.format(home=remote_home(toolbox_id))


# -- planning (local, no network) ------------------------------------------------------------


@dataclass
class Planned:
    """One toolbox whose gateway does not have the policy it should: what to ship, and how."""

    toolbox: Toolbox
    root: Path
    mirror: Mirror
    tables: Tables
    digest: str
    access: list[str]
    target: SshTarget
    private_key: str
    host_key: str | None


def plan(ws: Workspace, tables: Tables | None = None, only: Iterable[str] | None = None,
         force: bool = False) -> list[Planned]:
    """The remote toolboxes (or those in ``only``, by id) whose policy changed since it last
    landed, with the mirror brought up to date and the change noted as wanted."""
    tables = tables if tables is not None else ws.tables()
    wanted_ids = set(only) if only is not None else None
    planned = []
    for box in ws.repos.toolboxes:
        if not box.is_remote or (wanted_ids is not None and box.id not in wanted_ids):
            continue
        wanted = policy_tables(tables, box.id)
        wanted_digest = digest(wanted)
        root = mirror_root(ws, box)
        state = PushState.read(root)
        if state.installed == wanted_digest and not force:
            if state.wanted != wanted_digest:  # changed, then changed back before it landed
                state.wanted, state.wanted_access = wanted_digest, list(state.installed_access or [])
                state.write(root)
            continue
        planned.append(_planned(ws, box, root, wanted, wanted_digest))
    return planned


def _planned(ws: Workspace, box: Toolbox, root: Path, wanted: Tables, wanted_digest: str) -> Planned:
    from console.remote.deploy import mirror_for
    from console.remote.links import private_key

    if not box.ssh_target:
        raise NotFound(f"toolbox {box.name} has no SSH address; remove and re-add it")
    return Planned(box, root, mirror_for(ws, box), wanted, wanted_digest, access_of(wanted),
                   SshTarget.parse(box.ssh_target), private_key(ws, box), box.ssh_host_key)


def prepare(item: Planned) -> None:
    """Write the mirror and note what is wanted (before anything crosses the network)."""
    with push_lock(item.root):
        item.mirror.write(item.tables)
        state = PushState.read(item.root)
        state.wanted, state.wanted_access = item.digest, item.access
        state.write(item.root)


# -- shipping -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    toolbox: str
    toolbox_id: str
    landed: bool
    seconds: float
    removes: bool
    error: str | None = None


async def ship(root: Path, toolbox_id: str, send: Carrier, by: str) -> None:
    """Ship the newest mirror of one toolbox and note it landed, under its push lock."""
    loop = asyncio.get_running_loop()
    lock = push_lock(root, timeout=60.0)
    await loop.run_in_executor(None, lock.__enter__)
    try:
        state = PushState.read(root)
        if not state.pending:
            return  # someone else shipped it meanwhile
        data = (root / "vault.tbx").read_bytes()
        await send(install_command(toolbox_id), data)
        state.landed(by)
        state.write(root)
    finally:
        lock.__exit__(None, None, None)


def over_link(target: SshTarget, private_key: str, host_key: str | None, timeout: float = CONNECT_TIMEOUT) -> Carrier:
    """A carrier that opens its own SSH connection for one command."""

    async def send(command: str, data: bytes) -> None:
        link = SshLink(target, private_key, host_key, connect_timeout=timeout, wait_timeout=timeout,
                       keepalive_interval=30.0)
        await link.start()
        try:
            result = await link.run(command, input=data, timeout=45.0)
        finally:
            await link.close()
        _check(result, target)

    return send


def over_tunnel(tunnel: Tunnel) -> Carrier:
    """A carrier over a tunnel already open (the console keeps one per toolbox)."""

    async def send(command: str, data: bytes) -> None:
        result = await asyncio.to_thread(tunnel.run, command, data, 45.0)
        _check(result, tunnel.link.target)

    return send


def _check(result: object, target: SshTarget) -> None:
    status = getattr(result, "exit_status", 0)
    if status != 0:
        stderr = str(getattr(result, "stderr", "")).strip()[:200]
        raise TbxError(f"{target.host} could not install the policy: {stderr or f'exit {status}'}")


async def push_planned(planned: list[Planned], tunnels: dict[str, Tunnel] | None = None,
                       by: str = "command") -> list[Outcome]:
    """Ship every planned toolbox at once; an unreachable one fails alone."""
    tunnels = tunnels or {}

    async def one(item: Planned) -> Outcome:
        started = time.perf_counter()
        removes = PushState.read(item.root).removes
        tunnel = tunnels.get(item.toolbox.id)
        send = over_tunnel(tunnel) if tunnel is not None else over_link(item.target, item.private_key,
                                                                        item.host_key)
        try:
            await ship(item.root, item.toolbox.id, send, by)
        except (TbxError, SshError, OSError) as exc:
            await asyncio.to_thread(note_failure, item.root, str(exc))
            return Outcome(item.toolbox.name, item.toolbox.id, False, time.perf_counter() - started, removes,
                           str(exc))
        return Outcome(item.toolbox.name, item.toolbox.id, True, time.perf_counter() - started, removes)

    await asyncio.gather(*(asyncio.to_thread(prepare, item) for item in planned))
    return list(await asyncio.gather(*(one(item) for item in planned)))


def note_failure(root: Path, error: str) -> None:
    with contextlib.suppress(TbxError), push_lock(root, timeout=5.0):
        state = PushState.read(root)
        state.error, state.failed_at = error, time.time()
        state.write(root)


# -- what a command does with it --------------------------------------------------------------


@dataclass
class PushReport:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.landed]

    @property
    def removal_failed(self) -> list[Outcome]:
        return [o for o in self.failed if o.removes]


def push_changes(ws: Workspace, *, tunnels: dict[str, Tunnel] | None = None, only: Iterable[str] | None = None,
                 force: bool = False, by: str = "command") -> PushReport:
    """Push every remote toolbox whose policy changed (or is still pending), in parallel,
    audit each push, and hand failures to a background retry. Blocking: call it from a
    thread without a running event loop (the CLI, a console worker)."""
    planned = plan(ws, only=only, force=force)
    if not planned:
        record_late_landings(ws)
        return PushReport()
    report = PushReport(asyncio.run(push_planned(planned, tunnels, by)))
    events = [_event(ws, outcome) for outcome in report.outcomes]
    ws.log_events(events)
    record_late_landings(ws)
    failed = {o.toolbox_id for o in report.failed}
    if failed:
        from console.remote.retrier import spawn

        spawn(ws, [item for item in planned if item.toolbox.id in failed])
    return report


def _event(ws: Workspace, outcome: Outcome):  # noqa: ANN202 - an AuditEvent
    from console.audit import AuditEvent

    detail = {"seconds": round(outcome.seconds, 3), "removes_access": outcome.removes}
    if outcome.error:
        detail["error"] = outcome.error
    return AuditEvent(ws.actor, "policy.push", f"toolbox:{outcome.toolbox}", "ok" if outcome.landed else "error",
                      None, detail)


def record_late_landings(ws: Workspace) -> list[str]:
    """Audit the changes a background retry brought to a toolbox since (it holds no audit
    key); returns the toolboxes' names."""
    from console.audit import AuditEvent

    events, names = [], []
    for box in ws.repos.toolboxes:
        if not box.is_remote:
            continue
        root = mirror_root(ws, box)
        state = PushState.read(root)
        if state.audited:
            continue
        events.append(AuditEvent("system:retrier", "policy.push", f"toolbox:{box.name}", "ok", None,
                                 {"landed_at": state.landed_at, "late": True}))
        names.append(box.name)
        state.audited = True
        state.write(root)
    if events:
        ws.log_events(events)
    return names


def describe_failure(report: PushReport) -> str:
    """One line for a command whose change did not reach every toolbox."""
    names = ", ".join(f"{o.toolbox} ({o.error})" for o in report.failed)
    return (f"the change is in force here but NOT yet on toolbox {names}; tbx keeps retrying in the background "
            f"— 'tbx toolbox sync NAME' tries now, 'tbx toolbox list' shows where each toolbox stands")
