"""Servers of a toolbox: add from the catalog, start, stop, restart, remove, reconcile.

The vault holds what the user wants (a server, its settings, running or stopped);
Docker holds what is. Every operation changes Docker first and records the outcome in
the vault with its audit entries, so a failure leaves the vault as it was — and a
failed add leaves no container behind.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from console.catalog.model import CatalogEntry
from console.errors import AlreadyExists, NotFound, UsageError
from console.model import DesiredState, Limits, Mount, Secret, ServerInstance, Toolbox, check_name
from console.services.items import plural
from console.runtime.containers import (
    LABEL_CATALOG,
    LABEL_NAME,
    LABEL_SERVER,
    LABEL_TOOLBOX,
    ContainerSpec,
    Engine,
    container_user,
)
from console.runtime.enginehttp import Endpoint
from console.runtime.session import Discovery, mcp_session
from console.services.tools import DiscoveryOutcome, record_discovery
from console.model import Connection
from console.oauth.tokens import secret_pairs
from console.services.connections import check_binding, ensure_unique_binding
from console.services.redaction import server_redactor
from console.runtime.egress_container import egress_command, proxy_env, uses_egress
from console.runtime.handover import launcher_command, uses_launcher
from console.services.egress import allow_list, egress_host_dir
from console.services.token_injection import handover_step, secret_names
from console.trust.redact import Redactor
from console.workspace import DISCOVERY_META, Change, Workspace

Progress = Callable[[str], None]


def _quiet(_line: str) -> None:
    pass


@dataclass(frozen=True)
class ServerRef:
    toolbox: Toolbox
    server: ServerInstance

    @property
    def label(self) -> str:
        return f"{self.toolbox.name}/{self.server.name}"


def resolve(ws: Workspace, target: str) -> ServerRef:
    """``TOOLBOX/SERVER`` to the records it names."""
    toolbox_name, sep, server_name = target.partition("/")
    if not sep or not server_name or "/" in server_name:
        raise UsageError(f"bad server {target!r}: use TOOLBOX/SERVER, e.g. local/time")
    toolbox = ws.repos.toolboxes.require(toolbox_name)
    server = ws.repos.servers.by_name(toolbox.id, server_name)
    if server is None:
        raise NotFound(f"toolbox {toolbox_name} has no server {server_name!r}; 'tbx server list' shows them")
    return ServerRef(toolbox, server)


def engine_for(ws: Workspace, toolbox: Toolbox) -> Engine:
    """The Docker engine of a toolbox: the local one, or a remote one through SSH (the
    returned engine owns the tunnel; close it when done)."""
    if toolbox.is_remote:
        from console.remote.links import remote_engine

        return remote_engine(ws, toolbox)
    return Engine(toolbox.engine_endpoint)


def entry_of(server: ServerInstance) -> CatalogEntry:
    if server.spec is None:
        raise NotFound(f"server {server.name} has no stored spec; remove it and add it again")
    return CatalogEntry.model_validate(server.spec)


redactor_for = server_redactor


def container_spec(ws: Workspace, ref: ServerRef, engine: Engine) -> ContainerSpec:
    """The server's container: plain env only; a server with secrets runs under the
    launcher, which is handed their values on every start (``handover_step``); one with
    egress under the egress wrapper, its proxy's folder mounted (``egress_container``).
    Always on network none."""
    server, toolbox = ref.server, ref.toolbox
    entry = entry_of(server)
    if server.image is None:
        raise NotFound(f"server {ref.label} has no image; remove it and add it again")
    command = list(entry.command)
    env = dict(server.env)
    if names := secret_names(server):
        command = launcher_command(names, command, ws.settings.runtime.start_timeout)
    egress_dir = None
    if server.network == "egress":
        command = egress_command(command)
        env.update(proxy_env())
        egress_dir = egress_host_dir(ws, toolbox, server.id, create=engine.is_local)
    return ContainerSpec(
        name=f"tbx-{toolbox.name}-{server.name}-{server.id[-6:]}",
        image=server.image,
        command=command,
        labels={
            LABEL_TOOLBOX: toolbox.id,
            LABEL_SERVER: server.id,
            LABEL_NAME: ref.label,
            LABEL_CATALOG: server.catalog_id or entry.id,
        },
        env=env,
        mounts=list(server.mounts),
        network="none",
        limits=server.limits,
        user=container_user(ws.settings.runtime.container_user, engine.is_local),
        tmpfs_mb=ws.settings.runtime.tmpfs_size_mb,
        egress_dir=egress_dir,
    )


def unwritable_mounts(engine: Engine, mounts: list[Mount], user: str) -> list[str]:
    """A warning for each read-write folder of this machine that the server's user cannot
    write: its writes there fail (EACCES), which looks like a read-only mount. Running tbx
    as root, servers run as an unprivileged uid, and a root-owned folder is such a case."""
    uid_text, _sep, gid_text = user.partition(":")
    try:
        uid, gid = int(uid_text), int(gid_text or uid_text)
    except ValueError:
        return []
    if not engine.is_local or uid == 0:
        return []
    notes = []
    for mount in mounts:
        try:
            st = os.stat(mount.source)
        except OSError:
            continue  # creating the container says so
        bit = 0o200 if st.st_uid == uid else 0o020 if st.st_gid == gid else 0o002
        if not mount.read_only and not st.st_mode & bit:
            notes.append(f"warning: the server runs as uid {uid}, which cannot write {mount.source} (owner uid "
                         f"{st.st_uid}, mode {st.st_mode & 0o777:o}): its writes to {mount.target} will fail. "
                         f"Give it the folder (chown -R {uid}:{gid} {mount.source}), or set "
                         f"runtime.container_user in config.toml")
    return notes


def ensure_image(ws: Workspace, engine: Engine, entry: CatalogEntry, progress: Progress) -> str:
    from console.runtime.images import ImageBuilder

    return ImageBuilder(engine.client, ws.settings.runtime, ws.paths.cache_dir).ensure(entry, progress)


async def _boot(
    ws: Workspace, ref: ServerRef, engine: Engine, container_id: str, start: bool, redactor: Redactor,
    given: dict[str, str] | None = None,
) -> Discovery:
    """Attach first, then start, so nothing the server writes at start-up is missed; a
    server with secrets is handed them (``given``, or the vault's) before initialize."""

    async def start_container() -> None:
        await asyncio.to_thread(engine.start, container_id)

    endpoint = Endpoint.parse(engine.endpoint)
    async with mcp_session(
        endpoint,
        container_id,
        timeout=ws.settings.runtime.start_timeout,
        redactor=redactor,
        before_initialize=handover_step(ws, ref.server, endpoint, container_id,
                                        start=start_container if start else None, given=given),
        label=f"server {ref.label}",
        asks=ref.server.may_ask,  # what it offers depends on what its client may be asked
    ) as session:
        return await session.discover()


def record_use(change: Change, ref: ServerRef, connection: Connection) -> None:
    """Which server got which account's token (never the token)."""
    change.record("connection.use", f"server:{ref.label}", detail={
        "connection": connection.id, "provider": connection.provider, "account": connection.account,
    })


def _token_pairs(ws: Workspace, server: ServerInstance) -> list[tuple[str, str]]:
    connection = ws.repos.connections.get(server.connection or "")
    secret = ws.repos.secrets.get(connection.token_secret or "") if connection else None
    return secret_pairs(secret) if secret is not None else []


def _check_needs(
    entry: CatalogEntry, env: dict[str, str], secrets: dict[str, str], mounts: list[Mount], connected: bool = False
) -> dict[str, str]:
    """Fill env defaults and refuse an add that lacks what the entry says it needs."""
    secret_names = {s.name for s in entry.secrets}
    for key in env:
        if key in secret_names:
            raise UsageError(f"{key} is a secret of {entry.id}: pass it with --secret {key}, not --env")
    filled = {e.name: e.default for e in entry.env if e.default is not None} | env
    for var in entry.env:
        if var.required and var.name not in filled:
            raise UsageError(f"{entry.id} needs --env {var.name}=... ({var.description or 'required'})")
    oauth = entry.oauth
    if oauth is not None and not connected and oauth.token_env and oauth.token_env not in secrets:
        raise UsageError(
            f"{entry.id} signs in with {oauth.provider}: pass --connection ID ('tbx connection list'), "
            f"or a token with --secret {oauth.token_env}"
        )
    for var in entry.secrets:
        if var.required and var.name not in secrets and not (oauth and oauth.token_env == var.name):
            raise UsageError(f"{entry.id} needs --secret {var.name} ({var.description or 'required'})")
    targets = {m.target for m in mounts}
    if oauth is not None and not connected and oauth.token_file and not mounts:
        raise UsageError(
            f"{entry.id} signs in with {oauth.provider}: pass --connection ID, or mount a credentials folder "
            f"({', '.join(m.target for m in entry.mounts) or 'see the catalog entry'})"
        )
    for need in entry.mounts:
        if need.required and need.target not in targets:
            raise UsageError(f"{entry.id} needs --mount SRC:{need.target} ({need.description or 'a host folder'})")
    return filled


def add_server(
    ws: Workspace,
    toolbox: str,
    entry: CatalogEntry,
    *,
    name: str | None = None,
    env: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    mounts: list[Mount] | None = None,
    limits: Limits | None = None,
    connection: str | None = None,
    egress: list[str] | None = None,
    network: Literal["none", "egress"] | None = None,
    progress: Progress | None = None,
) -> ServerInstance:
    """Build or pull the image, create and start the container, discover its tools,
    then record it all. Any failure removes the container and leaves the vault as it was.
    ``egress``: the hosts it may reach (None: the entry's); ``network``: whether it gets
    the proxy at all (None: if the entry needs the network or it is given hosts)."""
    progress = progress or _quiet
    if entry.remote is not None:  # nothing to build or run: its secrets are its headers
        from console.services.remote_servers import add_remote_server, signed_in_to

        return add_remote_server(ws, toolbox, entry.remote.url, name=name or entry.id, headers=secrets,
                                 transport=entry.remote.transport,
                                 connection=connection or signed_in_to(ws, entry.remote.url),
                                 progress=progress)
    box = ws.repos.toolboxes.require(toolbox)
    name = check_name("server", name or entry.id)
    if ws.repos.servers.by_name(box.id, name):
        raise AlreadyExists(f"toolbox {toolbox} already has a server named {name!r}; pass --name to pick another")
    secrets = secrets or {}
    mounts = mounts or []
    bound = check_binding(ws, entry, connection) if connection else None
    if bound is not None:
        ensure_unique_binding(ws, box.id, entry.id, bound.id)
    plain_env = _check_needs(entry, env or {}, secrets, mounts, bound is not None)
    stored_secrets = [Secret(name=f"{toolbox}/{name}/{key}", value=value) for key, value in secrets.items()]
    server = ServerInstance(
        toolbox=box.id,
        name=name,
        catalog_id=entry.id if entry.origin != "import" else None,
        spec=entry.model_dump(mode="json"),
        env=plain_env,
        secret_refs={key: s.id for key, s in zip(secrets, stored_secrets, strict=True)},
        connection=bound.id if bound else None,
        mounts=mounts,
        network=network or ("egress" if entry.network == "egress" or egress else "none"),
        egress=allow_list(entry.egress if egress is None else egress),
        limits=limits or entry.limits,
        desired_state=DesiredState.RUNNING,
    )
    ref = ServerRef(box, server)
    engine = engine_for(ws, box)
    try:
        for note in unwritable_mounts(engine, mounts, container_user(ws.settings.runtime.container_user,
                                                                     engine.is_local)):
            progress(note)
        progress(f"preparing image for {entry.id}")
        server.image = ensure_image(ws, engine, entry, progress)
        progress("creating container")
        container = engine.create(container_spec(ws, ref, engine))
        try:
            progress("starting and connecting over MCP")
            found = asyncio.run(_boot(ws, ref, engine, container.id, True,
                                      Redactor([*secrets.items(), *_token_pairs(ws, server)]), given=secrets))
            with ws.change() as change:
                for secret in stored_secrets:
                    change.repos.secrets.put(secret)
                change.repos.servers.put(server)
                change.record("server.add", f"server:{ref.label}", detail={
                    "catalog": entry.id, "image": server.image, "network": server.network, "hosts": server.egress,
                    "env": sorted(plain_env), "secrets": sorted(secrets), "mounts": [m.target for m in mounts],
                })
                if bound is not None:
                    record_use(change, ref, bound)
                outcome = record_discovery(change, server, found, box.name)
            progress(f"ready: {plural(outcome.new)} discovered, pending approval")
        except BaseException:
            engine.remove(container.id)
            raise
    finally:
        engine.close()
    return server


def _set_desired(ws: Workspace, ref: ServerRef, state: DesiredState, action: str, **detail: object) -> None:
    with ws.change() as change:
        server = change.repos.servers.get(ref.server.id)
        if server is None:
            raise NotFound(f"server {ref.label} was removed meanwhile")
        server.desired_state = state
        change.repos.servers.put(server)
        change.record(action, f"server:{ref.label}", detail=dict(detail))


def start_server(ws: Workspace, target: str, progress: Progress | None = None) -> DiscoveryOutcome:
    """Start (re-creating the container if Docker lost it) and re-discover tools."""
    progress = progress or _quiet
    ref = resolve(ws, target)
    if ref.server.kind == "remote":
        from console.services.remote_servers import rediscover

        return rediscover(ws, ref, "server.start")
    engine = engine_for(ws, ref.toolbox)
    used = None
    try:
        state = engine.find(ref.server.id)
        if state is not None and (why := _outdated(engine, state.id, ref.server)):
            progress(f"{why}: creating it again")
            engine.remove(state.id)
            state = None
        if state is None:
            progress("container missing: creating it again")
            if not _image_present(engine, ref.server.image):
                ref.server.image = ensure_image(ws, engine, entry_of(ref.server), progress)
            container = engine.create(container_spec(ws, ref, engine))
            state = engine.inspect(container.id)
            used = ws.repos.connections.get(ref.server.connection or "")
        assert state is not None
        found = asyncio.run(_boot(ws, ref, engine, state.id, not state.running, redactor_for(ws, ref.server)))
    finally:
        engine.close()
    with ws.change() as change:
        server = change.repos.servers.get(ref.server.id) or ref.server
        server.desired_state, server.image = DesiredState.RUNNING, ref.server.image
        change.repos.servers.put(server)
        change.record("server.start", f"server:{ref.label}")
        if used is not None:
            record_use(change, ref, used)
        return record_discovery(change, server, found, ref.toolbox.name)


def _outdated(engine: Engine, container_id: str, server: ServerInstance) -> str | None:
    """Why a container cannot serve the server as it is now, so that starting the server
    makes it again: one made before secrets were handed over at start has their values
    in its Env (``docker inspect`` shows them); one on a network, or whose egress (on or
    off) is not the server's, reaches more or less than its allow-list says."""
    attrs = engine.client.api.inspect_container(container_id)
    if secret_names(server) and not uses_launcher(attrs):
        return "its container holds secrets in its configuration (made by an older tbx)"
    if (attrs.get("HostConfig") or {}).get("NetworkMode", "none") != "none":
        return "its container is on a network (made by an older tbx); egress now goes through the allow-list proxy"
    if uses_egress(attrs) != (server.network == "egress"):
        return f"its container was made with egress {'on' if uses_egress(attrs) else 'off'}"
    return None


def _image_present(engine: Engine, image: str | None) -> bool:
    from docker.errors import ImageNotFound

    if not image:
        return False
    try:
        engine.client.images.get(image)
        return True
    except ImageNotFound:
        return False


def _on_container(ws: Workspace, ref: ServerRef, action: Callable[[Engine, str], None]) -> None:
    """Apply ``action`` to the server's container, if Docker still has one (a remote
    server has none)."""
    if ref.server.kind == "remote":
        return
    engine = engine_for(ws, ref.toolbox)
    try:
        state = engine.find(ref.server.id)
        if state is not None:
            action(engine, state.id)
    finally:
        engine.close()


def stop_server(ws: Workspace, target: str) -> None:
    ref = resolve(ws, target)
    _on_container(ws, ref, Engine.stop)
    _set_desired(ws, ref, DesiredState.STOPPED, "server.stop")


def restart_server(ws: Workspace, target: str) -> DiscoveryOutcome:
    ref = resolve(ws, target)
    if ref.server.kind == "remote":
        from console.services.remote_servers import rediscover

        return rediscover(ws, ref, "server.restart")
    engine = engine_for(ws, ref.toolbox)
    try:
        state = engine.find(ref.server.id)
        if state is None or _outdated(engine, state.id, ref.server):
            engine.close()
            return start_server(ws, target)
        engine.stop(state.id)
        found = asyncio.run(_boot(ws, ref, engine, state.id, True, redactor_for(ws, ref.server)))
    finally:
        engine.close()
    with ws.change() as change:
        server = change.repos.servers.get(ref.server.id) or ref.server
        server.desired_state = DesiredState.RUNNING
        change.repos.servers.put(server)
        change.record("server.restart", f"server:{ref.label}")
        return record_discovery(change, server, found, ref.toolbox.name)


def recreate_server(ws: Workspace, target: str, progress: Progress | None = None) -> DiscoveryOutcome:
    """A new container from the vault's current settings and tokens. The server keeps
    its id, so its tools, pins and grants stay as they were."""
    ref = resolve(ws, target)
    _on_container(ws, ref, Engine.remove)
    return start_server(ws, target, progress)


def remove_server(ws: Workspace, target: str) -> dict[str, int]:
    """Remove the container, then the server with its tools, secrets and grants."""
    ref = resolve(ws, target)
    _on_container(ws, ref, Engine.remove)
    with ws.change() as change:
        repos, sid = change.repos, ref.server.id
        counts = {
            "items": repos.tools.delete([k for k, d in repos.tools.raw().items() if d["server"] == sid]),
            "grants": repos.tool_grants.delete([k for k, d in repos.tool_grants.raw().items() if d["server"] == sid]),
            "secrets": repos.secrets.delete(list(ref.server.secret_refs.values())),
        }
        repos.servers.delete([sid])
        repos.meta.delete(DISCOVERY_META + sid)
        change.record("server.remove", f"server:{ref.label}", detail=counts)
    return counts


def reconcile(ws: Workspace, toolbox: str, progress: Progress | None = None) -> list[str]:
    """Make Docker match the vault: start what should run, stop what should not,
    re-create lost containers, remove containers of ours that no server owns."""
    progress = progress or _quiet
    box = ws.repos.toolboxes.require(toolbox)
    engine = engine_for(ws, box)
    actions: list[str] = []
    try:
        containers = {c.labels.get(LABEL_SERVER, ""): c for c in engine.managed(box.id)}
        for server in ws.repos.servers.in_toolbox(box.id):
            if server.kind == "remote":
                continue  # nothing to run: the gateway connects to it when it should
            state = containers.pop(server.id, None)
            label = f"{box.name}/{server.name}"
            if server.desired_state is DesiredState.RUNNING:
                if state is None or not (state.running or state.status == "restarting"):
                    progress(f"starting {label}")
                    start_server(ws, label, progress)
                    actions.append(f"started {label}" if state else f"re-created and started {label}")
            elif state is not None and state.running:
                engine.stop(state.id)
                actions.append(f"stopped {label}")
        for orphan in containers.values():
            engine.remove(orphan.id)
            actions.append(f"removed container {orphan.name} (no server owns it)")
    finally:
        engine.close()
    if actions:
        with ws.change() as change:
            change.record("toolbox.reconcile", f"toolbox:{box.name}", detail={"actions": actions})
    return actions
