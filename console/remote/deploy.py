"""Running a toolbox's own gateway on the toolbox, and keeping its policy current.

On the remote host, everything of one toolbox lives under ``/var/lib/tbx/<toolbox id>``
(the gateway's ``TBX_HOME``): the policy vault, the gateway's config, its TLS key and
certificate, its audit log. The gateway runs as a hardened container on the host
network (agents reach it at the droplet's address) with the engine socket mounted, as
it drives the servers' containers next to it.
"""

from __future__ import annotations

import shlex
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from console.errors import NotFound, TbxError
from console.model import Limits, Mount, Toolbox
from console.remote.gateway_image import LABEL_ROLE, ensure_gateway_image
from console.remote.policy import GATEWAY_PORT, REMOTE_ROOT, Mirror, Tables, digest, policy_tables
from console.remote.ssh import SshTarget
from console.remote.tunnel import Tunnel
from console.runtime.containers import ContainerSpec, Engine
from console.workspace import Workspace

Progress = Callable[[str], None]
LABEL_GATEWAY_OF = "io.tbx.gateway-of"
HOME = "/home/tbx"
"""Where the toolbox's folder appears inside the gateway container."""
CONTROL_SOCKET = "control.sock"
"""In the toolbox's folder: where its gateway hears the owner (``gateway.control_socket``)."""


class RemoteGatewayError(TbxError):
    pass


def remote_home(toolbox: Toolbox) -> str:
    return f"{REMOTE_ROOT}/{toolbox.id}"


def gateway_host(toolbox: Toolbox) -> str:
    if not toolbox.ssh_target:
        raise NotFound(f"toolbox {toolbox.name} has no address")
    return SshTarget.parse(toolbox.ssh_target).host


def control_socket(toolbox: Toolbox) -> str:
    """The gateway's owner's door, as the host (and so the SSH tunnel) sees it."""
    return f"{remote_home(toolbox)}/{CONTROL_SOCKET}"


def mirror_for(ws: Workspace, toolbox: Toolbox) -> Mirror:
    secret = ws.repos.secrets.get(toolbox.gateway_secret or "")
    if secret is None:
        raise NotFound(f"the gateway key of toolbox {toolbox.name} is missing from the vault; remove and re-add it")
    return Mirror(ws.paths.state_dir / "remote" / toolbox.id, secret.value)


def container_name(toolbox: Toolbox) -> str:
    return f"tbx-gateway-{toolbox.name}-{toolbox.id[-6:]}"


def install_policy(toolbox: Toolbox, tunnel: Tunnel, mirror: Mirror) -> None:
    """Ship the mirror vault over an open tunnel and swap it in (see ``push.INSTALL``)."""
    from console.remote.push import install_command

    result = tunnel.run(install_command(toolbox.id), mirror.paths.vault.read_bytes(), timeout=45)
    if result.exit_status != 0:
        raise RemoteGatewayError(
            f"could not install the new policy on {toolbox.name}: "
            f"{result.stderr.strip()[:200] or 'exit ' + str(result.exit_status)}"
        )


def deploy_gateway(
    ws: Workspace, toolbox: Toolbox, tunnel: Tunnel, engine: Engine, cert_pem: str, key_pem: str,
    progress: Progress, *, mirror: Mirror, tables: Tables, port: int = GATEWAY_PORT,
) -> str:
    """Build (or find) the gateway image on the toolbox, ship its files, (re)start it and
    wait until it answers over TLS with our certificate. Returns the gateway's URL.

    ``tables`` are the vault's tables with the toolbox in them (it is only recorded once
    its gateway answers)."""
    host = gateway_host(toolbox)
    image = ensure_gateway_image(engine.client, ws.settings.runtime, ws.paths.cache_dir, progress)
    mirror.write(policy_tables(tables, toolbox.id))
    config = mirror.write_config(host, port)
    home = remote_home(toolbox)
    progress("shipping the policy, certificate and settings")
    tunnel.run(f"mkdir -p -m 700 {shlex.quote(home)} {shlex.quote(home + '/config')} {shlex.quote(home + '/tls')}")
    tunnel.put_file(f"{home}/config/config.toml", config.read_bytes(), mode=0o600)
    tunnel.put_file(f"{home}/tls/cert.pem", cert_pem.encode(), mode=0o600)
    tunnel.put_file(f"{home}/tls/key.pem", key_pem.encode(), mode=0o600)
    install_policy(toolbox, tunnel, mirror)
    _note_installed(ws, toolbox, policy_tables(tables, toolbox.id))
    remove_gateway(engine, toolbox)
    progress("starting the gateway")
    spec = ContainerSpec(
        name=container_name(toolbox),
        image=image,
        command=["gateway", "serve", "--toolbox", toolbox.name,
                 "--tls-cert", f"{HOME}/tls/cert.pem", "--tls-key", f"{HOME}/tls/key.pem",
                 "--control-socket", f"{HOME}/{CONTROL_SOCKET}"],
        labels={LABEL_ROLE: "gateway", LABEL_GATEWAY_OF: toolbox.id},
        env={"TBX_HOME": HOME, "TBX_PASSPHRASE": mirror.passphrase, "TBX_CACHE_DIR": "/tmp/cache"},
        mounts=[Mount(source=home, target=HOME), Mount(source="/var/run/docker.sock", target="/var/run/docker.sock")],
        network="host",
        limits=Limits(cpus=1.0, memory_mb=512, pids=256),
        # Root inside, with every capability dropped: enough to open the engine socket.
        user="0:0",
    )
    container = engine.create(spec)
    engine.start(container.id)
    url = f"https://{host}:{port}"
    wait_until_serving(host, port, cert_pem, engine, container.id)
    progress(f"gateway up at {url}/mcp")
    return url


def _note_installed(ws: Workspace, toolbox: Toolbox, wanted: Tables) -> None:
    from console.remote.push import PushState, access_of, mirror_root

    root = mirror_root(ws, toolbox)
    state = PushState.read(root)
    state.wanted, state.wanted_access = digest(wanted), access_of(wanted)
    state.landed("deploy")
    state.write(root)


def remove_gateway(engine: Engine, toolbox: Toolbox) -> None:
    for found in engine.client.containers.list(all=True, filters={"label": f"{LABEL_GATEWAY_OF}={toolbox.id}"}):
        engine.remove(found.id)


def tls_context(cert_pem: str) -> ssl.SSLContext:
    """Trust exactly this certificate: the one the console made for the gateway."""
    context = ssl.create_default_context(cadata=cert_pem)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def wait_until_serving(host: str, port: int, cert_pem: str, engine: Engine, container_id: str,
                       timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    context = tls_context(cert_pem)
    last = "no answer yet"
    while time.monotonic() < deadline:
        state = engine.inspect(container_id)
        if state is not None and not state.running and state.status not in ("created", "restarting"):
            raise RemoteGatewayError(
                f"the gateway on {host} stopped ({state.status}, exit {state.exit_code}): "
                f"{_tail(engine, container_id)}"
            )
        try:
            with socket.create_connection((host, port), timeout=2) as raw, \
                    context.wrap_socket(raw, server_hostname=host) as tls:
                tls.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
                if tls.recv(64).startswith(b"HTTP/1.1 200"):
                    return
                last = "it answered, but not healthy"
        except ssl.SSLCertVerificationError as exc:
            raise RemoteGatewayError(
                f"the service at {host}:{port} does not present the gateway's certificate ({exc.verify_message}); "
                "another program holds the port?"
            ) from None
        except OSError as exc:
            last = exc.strerror or type(exc).__name__
        time.sleep(0.3)
    raise RemoteGatewayError(f"the gateway on {host}:{port} did not come up within {timeout:.0f}s ({last})")


def _tail(engine: Engine, container_id: str) -> str:
    try:
        raw = engine.client.api.logs(container_id, stdout=False, stderr=True, tail=3)
    except Exception:  # the container may be gone already
        return "no output"
    text = raw.decode("utf-8", "replace").strip().splitlines()
    return text[-1][:300] if text else "no output"


def local_mirror_dir(ws: Workspace, toolbox: Toolbox) -> Path:
    return ws.paths.state_dir / "remote" / toolbox.id
