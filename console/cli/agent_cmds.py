"""``tbx agent ...``: identities with bearer tokens."""

from __future__ import annotations

import click

from console.cli.base import CliState, confirm_or_yes, emit_json, json_option, pass_state, print_table
from console.services import agents as svc

TOKEN_WARNING = "This token is shown once. Store it in the agent's configuration now; tbx keeps only its hash."


def register(cli: click.Group) -> None:
    @cli.group()
    def agent() -> None:
        """Add, list, rotate, disable, enable and remove agents."""

    @agent.command("add")
    @click.argument("name")
    @json_option
    @pass_state
    def add(state: CliState, name: str, as_json: bool) -> None:
        """Create an agent and print its token (once)."""
        created, token = svc.add_agent(state.workspace(), name)
        if as_json:
            emit_json({"id": created.id, "name": created.name, "token": token})
            return
        click.echo(f"agent {created.name} created")
        click.echo(f"token: {token}")
        click.echo(TOKEN_WARNING, err=True)

    @agent.command("list")
    @json_option
    @pass_state
    def list_(state: CliState, as_json: bool) -> None:
        """List agents with their grant counts."""
        summaries = svc.list_agents(state.workspace())
        if as_json:
            emit_json([s.to_json() for s in summaries])
            return
        print_table(
            ["NAME", "STATE", "TOKEN", "TOOLBOXES", "ITEM GRANTS", "CREATED"],
            [
                [s.name, "enabled" if s.enabled else "disabled", s.fingerprint, s.toolboxes, s.tool_grants,
                 f"{s.created:%Y-%m-%d %H:%M}"]
                for s in summaries
            ],
            empty="no agents yet: 'tbx agent add NAME'",
        )

    @agent.command()
    @click.argument("name")
    @json_option
    @pass_state
    def rotate(state: CliState, name: str, as_json: bool) -> None:
        """Replace an agent's token; the old one stops working at once."""
        token = svc.rotate_token(state.workspace(), name)
        if as_json:
            emit_json({"name": name, "token": token})
            return
        click.echo(f"new token for {name}: {token}")
        click.echo(TOKEN_WARNING, err=True)

    @agent.command()
    @click.argument("name")
    @pass_state
    def disable(state: CliState, name: str) -> None:
        """Refuse the agent everywhere, keeping its grants."""
        changed = svc.set_enabled(state.workspace(), name, False)
        click.echo(f"agent {name} disabled" if changed else f"agent {name} was already disabled")

    @agent.command()
    @click.argument("name")
    @pass_state
    def enable(state: CliState, name: str) -> None:
        """Let a disabled agent in again."""
        changed = svc.set_enabled(state.workspace(), name, True)
        click.echo(f"agent {name} enabled" if changed else f"agent {name} was already enabled")

    @agent.command()
    @click.argument("name")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @pass_state
    def remove(state: CliState, name: str, yes: bool) -> None:
        """Delete an agent and all its grants."""
        ws = state.workspace()
        ws.repos.agents.require(name)
        confirm_or_yes(yes, f"Remove agent {name} and all its grants?")
        removed = svc.remove_agent(ws, name)
        click.echo(f"agent {name} removed with {removed} grant(s)")
