"""``tbx gateway serve|status``, ``tbx connect``, ``tbx client-config``."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from console.cli.base import CliState, emit_json, json_option, note, pass_state
from console.errors import TbxError, UsageError
from console.gateway.clientconfig import ALIASES, CLIENTS, base_url, build, client_name, default_file

if TYPE_CHECKING:
    from console.gateway.process import GatewayInfo

TOKEN_ENV = "TBX_AGENT_TOKEN"


def running_gateway(state: CliState, toolbox: str) -> GatewayInfo | None:
    """The gateway serving ``toolbox``, or None if none answers."""
    from console.gateway import process

    # The paths, not the workspace: finding the gateway must not unlock the vault (a
    # desktop client launching 'tbx connect' has no terminal to ask a passphrase on).
    return process.running(state.paths, toolbox, timeout=2.0)


def gateway_url(state: CliState, toolbox: str) -> str:
    info = running_gateway(state, toolbox)
    if info is None:
        raise TbxError(f"no gateway is serving toolbox {toolbox}: start one with 'tbx gateway serve'")
    return info.url


def _use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def register(cli: click.Group) -> None:
    @cli.group()
    def gateway() -> None:
        """Serve granted tools to agents over MCP Streamable HTTP."""

    @gateway.command()
    @click.option("--host", help="Address to bind (default 127.0.0.1).")
    @click.option("--port", type=int, help="Port (default 8765; 0 picks a free one).")
    @click.option("--toolbox", default="local", show_default=True)
    @click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Serve HTTPS with this certificate (PEM).")
    @click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="The certificate's private key (PEM).")
    @click.option("--control-socket", type=click.Path(dir_okay=False),
                  help="Serve the owner's approvals on this Unix socket instead of the port (remote toolboxes).")
    @pass_state
    def serve(state: CliState, host: str | None, port: int | None, toolbox: str, tls_cert: str | None,
              tls_key: str | None, control_socket: str | None) -> None:
        """Run the gateway in the foreground until interrupted."""
        from console.gateway.service import Gateway

        if (tls_cert is None) != (tls_key is None):
            raise UsageError("--tls-cert and --tls-key go together")
        ws = state.workspace()
        if running_gateway(state, toolbox):
            raise TbxError(f"a gateway already serves toolbox {toolbox} ('tbx gateway status')")
        gw = Gateway(ws, toolbox, host=host, port=port, tls=(tls_cert, tls_key) if tls_cert and tls_key else None,
                     control_socket=control_socket)

        async def main() -> None:
            task = asyncio.create_task(gw.run())
            started = asyncio.create_task(gw.started.wait())
            await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
            if gw.started.is_set():
                click.echo(f"gateway for toolbox {toolbox} at {gw.url}/mcp (per server: {gw.url}/servers/NAME/mcp)")
            await task

        _use_uvloop()
        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            pass  # uvicorn shuts down cleanly, then re-raises the interrupt that asked it to
        except OSError as exc:
            raise TbxError(f"cannot listen on {gw.host}:{gw.port}: {exc.strerror or exc}; pick another --port") from None
        click.echo(f"gateway for toolbox {toolbox} stopped")

    @gateway.command()
    @click.option("--toolbox", default="local", show_default=True)
    @json_option
    @pass_state
    def status(state: CliState, toolbox: str, as_json: bool) -> None:
        """Say whether a gateway serves the toolbox, where, and what keeps it from working.

        Exits 1 when none serves it, or when it has a problem (its audit log cannot be
        written and calls are refused, or it keeps an older policy than the vault's)."""
        info = running_gateway(state, toolbox)
        if as_json:
            emit_json({"running": info is not None, **(info.to_json() if info else {})})
            return
        if info is None:
            click.echo(f"no gateway is serving toolbox {toolbox} ('tbx gateway serve' starts one)")
            raise SystemExit(1)
        click.echo(f"gateway for toolbox {toolbox}: {info.url}/mcp (pid {info.pid}, up {info.uptime / 60:.0f} min)")
        if info.problems:
            for problem in info.problems:
                click.echo(f"problem: {problem}", err=True)
            raise SystemExit(1)

    @cli.command()
    @click.argument("agent")
    @click.option("--toolbox", default="local", show_default=True)
    @click.option("--url", help="Gateway URL, e.g. http://127.0.0.1:8765 (default: the gateway running here, "
                                "found without opening the vault).")
    @pass_state
    def connect(state: CliState, agent: str, toolbox: str, url: str | None) -> None:
        """Stdio bridge to the gateway for clients that only launch stdio servers.

        The agent's token comes from TBX_AGENT_TOKEN.
        """
        from console.gateway.bridge import Bridge

        token = os.environ.get(TOKEN_ENV)
        if not token:
            raise UsageError(f"set {TOKEN_ENV} to agent {agent}'s token ('tbx client-config {agent} "
                             f"--client claude-desktop --rotate' issues one and writes it into the config)")
        if url is None:
            info = running_gateway(state, toolbox)
            if info is None:
                raise UsageError(f"no gateway is serving toolbox {toolbox} here: pass --url with the gateway's "
                                 f"address, or start one with 'tbx gateway serve'")
            url = info.url
        target = url.rstrip("/")
        if not target.endswith("/mcp"):
            target += "/mcp"
        asyncio.run(Bridge(target, token).run())

    @cli.command("client-config")
    @click.argument("agent")
    @click.option("--client", type=click.Choice([*CLIENTS, *ALIASES]), required=True,
                  help="The MCP client to configure ('claude' is the older name of claude-desktop).")
    @click.option("--toolbox", default="local", show_default=True)
    @click.option("--rotate", is_flag=True, help="Issue a new token and put it in the config (the old one stops working).")
    @click.option("--write", "write_file", is_flag=True,
                  help="Merge the entry into the client's config file (a backup first) and show the diff.")
    @click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path),
                  help="The config file --write merges into (default: the client's own).")
    @pass_state
    def client_config(state: CliState, agent: str, client: str, toolbox: str, rotate: bool, write_file: bool,
                      path: Path | None) -> None:
        """Print (or --write) the config that connects a client to the gateway as AGENT.

        Where the client can read the token from its environment (TBX_AGENT_TOKEN) or ask
        for it (VS Code), the config says so instead of holding it; --rotate issues a new
        token and puts it in where the config file is the user's own."""
        from console.gateway import clientfile
        from console.services.agents import rotate_token

        client = client_name(client)
        if path is not None and not write_file:
            raise UsageError("--file goes with --write")
        ws = state.workspace()
        ws.repos.agents.require(agent)
        box = ws.repos.toolboxes.require(toolbox)
        url = box.gateway_address or base_url(ws.settings.gateway.host, ws.settings.gateway.port)
        target = None
        if write_file:
            target = path or default_file(client)
            if target is None:
                raise UsageError(f"{client} has no config file to write; run without --write and copy what it prints")
            clientfile.merge(build(client, agent, url), target)  # refuse a file it cannot parse before rotating
        config = build(client, agent, url, rotate_token(ws, agent) if rotate else None)
        if target is None:
            click.echo(config.text)
        else:
            change = clientfile.merge(config, target)
            if not change.changed:
                click.echo(f"{target} already has {config.key} as it should be; nothing written")
            else:
                click.echo(change.diff(), nl=False)
                backup = clientfile.write(change)
                click.echo(f"wrote {target}" + (f" (the previous one is in {backup})" if backup else ""))
        note(config.token_note)
