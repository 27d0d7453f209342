"""``tbx server ...``: servers in a toolbox's containers."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
from pathlib import Path

import click

from console.cli import egress_cmds, server_login_cmds
from console.cli.remote_server_cmds import add_remote, edit_remote, remote_edit_options, remote_server_options
from console.cli.base import (CliState, confirm_or_yes, emit_json, interactive, json_option, note, pass_state,
                              print_table)
from console.errors import UsageError
from console.model import AGENT_ASKS, AgentAsk, Limits, Mount
from console.services.items import plural


def parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"bad --env {pair!r}: use KEY=VALUE")
        env[key] = value
    return env


def read_secret(spec: str) -> tuple[str, str]:
    """``KEY`` (from the environment variable KEY, or asked for, hidden) or ``KEY=@FILE``.

    A value typed inline would land in shell history, so ``KEY=value`` is refused.
    """
    key, sep, rest = spec.partition("=")
    if sep:
        if not rest.startswith("@"):
            raise UsageError(f"--secret {key}=...: put the value in the environment variable {key}, "
                             f"in a file (--secret {key}=@FILE), or leave it out to be asked")
        try:
            return key, Path(rest[1:]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"cannot read secret {key} from {rest[1:]}: {exc.strerror}") from None
    if key in os.environ:
        return key, os.environ[key]
    if not interactive():
        raise UsageError(f"no value for secret {key}: set the environment variable {key} or use --secret {key}=@FILE")
    return key, getpass.getpass(f"{key}: ")


def parse_mount(spec: str) -> Mount:
    parts = spec.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise UsageError(f"bad --mount {spec!r}: use SRC:DST or SRC:DST:ro")
    source = str(Path(parts[0]).expanduser().absolute())
    if not parts[1].startswith("/"):
        raise UsageError(f"bad --mount {spec!r}: the container path must be absolute")
    return Mount(source=source, target=parts[1], read_only=len(parts) == 3 and parts[2] == "ro")


def progress_line(line: str) -> None:
    click.echo(f"  {line}", err=True)


def register(cli: click.Group) -> None:
    @cli.group()
    def server() -> None:
        """Add, start, stop, restart, edit, remove and watch servers."""

    egress_cmds.add_to(server)
    server_login_cmds.add_to(server)

    @server.command("add")
    @click.argument("toolbox")
    @click.argument("catalog_id", required=False)
    @click.option("--name", help="Server name (default: the catalog id).")
    @click.option("--env", "env", multiple=True, metavar="KEY=VALUE", help="Plain environment variable.")
    @click.option("--secret", "secret", multiple=True, metavar="KEY[=@FILE]",
                  help="Secret from env var KEY, a file, or a hidden prompt; kept in the vault.")
    @click.option("--mount", "mount", multiple=True, metavar="SRC:DST[:ro]", help="Bind a host folder.")
    @click.option("--cpus", type=float, help="CPU limit (default from the catalog).")
    @click.option("--memory", "memory_mb", type=int, help="Memory limit in MiB.")
    @click.option("--pids", type=int, help="Process limit.")
    @click.option("--connection", help="OAuth connection whose token the server gets ('tbx connection list').")
    @click.option("--allow-host", "allow", multiple=True, metavar="HOST[:PORT]",
                  help="A host the server may reach, besides the catalog's (gives it egress). Repeatable.")
    @remote_server_options
    @pass_state
    def add(state: CliState, toolbox: str, catalog_id: str | None, name: str | None, env: tuple[str, ...],
            secret: tuple[str, ...], mount: tuple[str, ...], cpus: float | None, memory_mb: int | None,
            pids: int | None, connection: str | None, allow: tuple[str, ...], url: str | None,
            header: tuple[str, ...], transport: str, device: bool, no_browser: bool) -> None:
        """Add a catalog server to a toolbox: build or pull, start, discover its tools.
        With --url instead of CATALOG_ID: a remote server, reached over HTTP."""
        from console.catalog import load_catalog
        from console.services.servers import add_server

        ws = state.workspace()
        if url is not None:
            if catalog_id or env or secret or mount or cpus or memory_mb or pids or connection or allow:
                raise UsageError("a remote server (--url) takes only --name, --header, --transport, --device "
                                 "and --no-browser")
            add_remote(ws, toolbox, url, name, header, transport, device=device, no_browser=no_browser)
            return
        if catalog_id is None:
            raise UsageError("name a catalog server ('tbx catalog list'), or a remote one with --url URL --name NAME")
        entry = load_catalog(ws.paths).get(catalog_id)
        if entry.remote is not None:
            add_remote(ws, toolbox, entry.remote.url, name or entry.id, header, entry.remote.transport,
                       device=device, no_browser=no_browser)
            return
        if header:
            raise UsageError("--header is for a remote server; this one takes --secret KEY")
        limits = None
        if cpus or memory_mb or pids:
            base = entry.limits
            limits = Limits(cpus=cpus or base.cpus, memory_mb=memory_mb or base.memory_mb, pids=pids or base.pids)
        secrets = dict(read_secret(s) for s in secret)
        created = add_server(ws, toolbox, entry, name=name, env=parse_env(env), secrets=secrets,
                             mounts=[parse_mount(m) for m in mount], limits=limits, connection=connection,
                             egress=[*entry.egress, *allow] if allow else None, progress=progress_line)
        found = plural(item.ref for item in ws.repos.tools.of_server(created.id))
        click.echo(f"server {toolbox}/{created.name} is running with {found}, pending approval")
        click.echo(f"next: 'tbx tools list {toolbox}/{created.name}', then 'tbx tools approve {toolbox}/{created.name}'")
        if created.network == "egress":
            click.echo(f"it may reach: {', '.join(created.egress) or 'no host yet'} "
                       f"('tbx server egress {toolbox}/{created.name} --allow-host HOST' adds one)")

    @server.command("list")
    @click.argument("toolbox", required=False)
    @click.option("--no-ping", is_flag=True, help="Skip the MCP ping (faster; health from Docker only).")
    @json_option
    @pass_state
    def list_(state: CliState, toolbox: str | None, no_ping: bool, as_json: bool) -> None:
        """List servers with state, health and tool counts."""
        from console.gateway.remote_server_health import seen_by_gateway
        from console.services.server_status import statuses

        found = statuses(state.workspace(), toolbox, ping=not no_ping, ask=seen_by_gateway)
        if as_json:
            emit_json([s.to_json() for s in found])
            return
        print_table(
            ["SERVER", "KIND", "STATE", "HEALTH", "PING", "RESTARTS", "TOOLS", "PENDING", "NOTE"],
            [[f"{s.toolbox}/{s.name}", s.kind, s.state, s.health, f"{s.ping_ms:.1f} ms" if s.ping_ms is not None else "-",
              s.restarts, s.tools, s.pending, (s.error or "")[:60]] for s in found],
            empty="no servers yet: 'tbx server add local time'",
        )

    def _simple(verb: str, helptext: str) -> None:
        @server.command(verb, help=helptext)
        @click.argument("target", metavar="TOOLBOX/SERVER")
        @pass_state
        def command(state: CliState, target: str) -> None:
            from console.services import servers

            ws = state.workspace()
            if verb == "start":
                outcome = servers.start_server(ws, target, progress_line)
                click.echo(f"{target} started; {_describe(outcome)}")
            elif verb == "restart":
                outcome = servers.restart_server(ws, target)
                click.echo(f"{target} restarted; {_describe(outcome)}")
            else:
                servers.stop_server(ws, target)
                click.echo(f"{target} stopped")

    _simple("start", "Start a server (re-creating its container if needed).")
    _simple("stop", "Stop a server; it stays stopped until started.")
    _simple("restart", "Restart a server and discover its tools again.")

    def _switch(verb: str, allowed: bool, helptext: str) -> None:
        @server.command(verb, help=helptext)
        @click.argument("target", metavar="TOOLBOX/SERVER")
        @click.argument("kind", type=click.Choice(AGENT_ASKS))
        @json_option
        @pass_state
        def command(state: CliState, target: str, kind: AgentAsk, as_json: bool) -> None:
            from console.services.server_asks import set_may_ask

            switch = set_may_ask(state.workspace(), target, kind, allowed)
            if as_json:
                emit_json(switch.to_json())
                return
            now = "may now ask" if allowed else "may no longer ask"
            line = f"{switch.server} {now} agents for {kind}" if switch.changed else \
                f"{switch.server}: {kind} was already {'allowed' if allowed else 'denied'}"
            restarted = f"; restarted: {_describe(switch.restarted)}" if switch.restarted else ""
            click.echo(f"{line} (allowed: {', '.join(switch.may_ask) or 'nothing'}){restarted}")
            if switch.unreached:
                note(f"not restarted ({switch.unreached}); its next session declares it")

    _switch("allow", True, "Let a server ask the agent whose call it serves for sampling, elicitation or roots "
                           "(restarts it if running, so its session declares it).")
    _switch("deny", False, "Stop a server asking agents for sampling, elicitation or roots (the default).")

    @server.command()
    @click.argument("target", metavar="TOOLBOX/SERVER")
    @click.option("--env", "env", multiple=True, metavar="KEY=VALUE", help="Set a plain environment variable.")
    @click.option("--unset-env", "unset", multiple=True, metavar="KEY", help="Remove a plain environment variable.")
    @click.option("--mount", "mount", multiple=True, metavar="SRC:DST[:ro]",
                  help="Bind a host folder (replaces the mount at DST, if any).")
    @click.option("--unmount", "unmount", multiple=True, metavar="DST", help="Remove the mount at DST.")
    @click.option("--cpus", type=float, help="CPU limit.")
    @click.option("--memory", "memory_mb", type=int, help="Memory limit in MiB.")
    @click.option("--pids", type=int, help="Process limit.")
    @remote_edit_options
    @pass_state
    def edit(state: CliState, target: str, env: tuple[str, ...], unset: tuple[str, ...], mount: tuple[str, ...],
             unmount: tuple[str, ...], cpus: float | None, memory_mb: int | None, pids: int | None,
             url: str | None, header: tuple[str, ...], remove_header: tuple[str, ...]) -> None:
        """Change a server's env, mounts or limits: its container is made again with them;
        its tools, approvals, secrets and grants are kept. Secrets: remove and add it again.
        A remote server's URL and headers: --url, --header, --remove-header."""
        from console.services import server_edit, servers

        local = env or unset or mount or unmount or cpus or memory_mb or pids
        if url or header or remove_header:
            if local:
                raise UsageError("--url, --header and --remove-header are a remote server's; pass them alone")
            edit_remote(state.workspace(), target, url, header, remove_header)
            return
        if not local:
            raise UsageError("nothing to change: pass --env, --unset-env, --mount, --unmount, --cpus, --memory "
                             "or --pids (a remote server: --url, --header or --remove-header)")
        ws = state.workspace()
        current = servers.resolve(ws, target).server
        new_env = None
        if env or unset:
            missing = [key for key in unset if key not in current.env]
            if missing:
                raise UsageError(f"{target} has no env {', '.join(missing)}; its env: {', '.join(current.env) or 'none'}")
            new_env = {k: v for k, v in current.env.items() if k not in unset} | parse_env(env)
        new_mounts = None
        if mount or unmount:
            added = [parse_mount(m) for m in mount]
            gone = set(unmount) | {m.target for m in added}
            missing = [dst for dst in unmount if dst not in {m.target for m in current.mounts}]
            if missing:
                raise UsageError(f"{target} has no mount at {', '.join(missing)}")
            new_mounts = [m for m in current.mounts if m.target not in gone] + added
        limits = None
        if cpus or memory_mb or pids:
            base = current.limits
            try:
                limits = Limits(cpus=cpus or base.cpus, memory_mb=memory_mb or base.memory_mb, pids=pids or base.pids)
            except ValueError as exc:  # pydantic's ValidationError
                raise UsageError(f"bad limit: {exc.errors()[0]['loc'][0]} {exc.errors()[0]['msg'].lower()}") from None
        outcome = server_edit.edit_server(ws, target, env=new_env, mounts=new_mounts, limits=limits,
                                      progress=progress_line)
        if not outcome.changed:
            click.echo(f"{target}: nothing changed")
            return
        again = f"; running again: {_describe(outcome.discovery)}" if outcome.discovery else ""
        click.echo(f"{target}: {', '.join(outcome.changed)} changed, container made again{again}")

    @server.command()
    @click.argument("target", metavar="TOOLBOX/SERVER")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @pass_state
    def remove(state: CliState, target: str, yes: bool) -> None:
        """Remove a server, its container, tools, secrets and grants."""
        from console.services import servers

        from console.services.grants import agent_list, grant_holders

        ws = state.workspace()
        ref = servers.resolve(ws, target)
        losers = grant_holders(ws.repos, ref.server.id)
        who = f"; {agent_list(losers)} {'loses' if len(losers) == 1 else 'lose'} access to it" if losers else ""
        confirm_or_yes(yes, f"Remove server {target} with its tools and other items, secrets and grants{who}?")
        counts = servers.remove_server(ws, target)
        click.echo(f"{target} removed ({', '.join(f'{v} {k}' for k, v in counts.items())})")

    @server.command()
    @click.argument("target", metavar="TOOLBOX/SERVER")
    @click.option("--follow", "-f", is_flag=True, help="Keep printing new lines.")
    @click.option("--tail", type=click.IntRange(min=0), default=100, show_default=True)
    @pass_state
    def logs(state: CliState, target: str, follow: bool, tail: int) -> None:
        """Print the server's stderr (secrets masked)."""
        from console.services.server_status import log_lines

        async def run() -> None:
            async for line in log_lines(state.workspace(), target, follow=follow, tail=tail):
                click.echo(line)

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())


def _describe(outcome) -> str:  # noqa: ANN001
    parts = [f"{outcome.unchanged} item(s) unchanged"]
    if outcome.new:
        parts.append(f"new: {', '.join(outcome.new)} (pending approval)")
    if outcome.changed:
        parts.append(f"CHANGED: {', '.join(outcome.changed)} (blocked until re-approved)")
    if outcome.removed:
        parts.append(f"gone: {', '.join(outcome.removed)}")
    return "; ".join(parts)
