"""``tbx toolbox ...``: the Docker hosts that run servers."""

from __future__ import annotations

import click

from console.cli.base import CliState, confirm_or_yes, emit_json, json_option, pass_state, print_table
from console.services import toolboxes as svc


def register(cli: click.Group) -> None:
    @cli.group()
    def toolbox() -> None:
        """Register, list and remove toolboxes."""

    @toolbox.command("add")
    @click.argument("name")
    @click.option("--local", "local", is_flag=True, required=True, help="The Docker engine on this machine.")
    @click.option("--engine", metavar="URL", help="Engine socket (default: DOCKER_HOST or the local socket).")
    @pass_state
    def add(state: CliState, name: str, local: bool, engine: str | None) -> None:
        """Register a toolbox."""
        created = svc.add_local(state.workspace(), name, engine)
        click.echo(f"toolbox {created.name} added (local engine {engine or 'default'})")

    @toolbox.command("list")
    @json_option
    @pass_state
    def list_(state: CliState, as_json: bool) -> None:
        """List toolboxes."""
        ws = state.workspace()
        toolboxes = sorted(ws.repos.toolboxes, key=lambda t: t.name)
        counts = {t.id: len(ws.repos.servers.in_toolbox(t.id)) for t in toolboxes}
        if as_json:
            emit_json([{**t.model_dump(mode="json"), "servers": counts[t.id]} for t in toolboxes])
            return
        print_table(
            ["NAME", "KIND", "ENGINE", "SERVERS", "GATEWAY"],
            [[t.name, t.kind.value, t.engine_endpoint or "default", counts[t.id], t.gateway_address or "-"]
             for t in toolboxes],
            empty="no toolboxes yet: 'tbx toolbox add local --local'",
        )

    @toolbox.command()
    @click.argument("name")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @pass_state
    def remove(state: CliState, name: str, yes: bool) -> None:
        """Forget a toolbox, its servers and every grant into it."""
        ws = state.workspace()
        ws.repos.toolboxes.require(name)
        confirm_or_yes(yes, f"Remove toolbox {name} with its servers and grants?")
        counts = svc.remove_toolbox(ws, name)
        click.echo(f"toolbox {name} removed ({', '.join(f'{v} {k}' for k, v in counts.items())})")

    @toolbox.command()
    @click.argument("name")
    @pass_state
    def reconcile(state: CliState, name: str) -> None:
        """Make Docker match the vault: start, stop, re-create, remove orphans."""
        from console.cli.server_cmds import progress_line
        from console.services.servers import reconcile as run_reconcile

        actions = run_reconcile(state.workspace(), name, progress_line)
        click.echo("\n".join(actions) if actions else f"toolbox {name} already matches the vault")
