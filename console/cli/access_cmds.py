"""``tbx grant``, ``tbx revoke`` and ``tbx access``."""

from __future__ import annotations

import click

from console.cli.base import CliState, emit_json, json_option, note, pass_state
from console.services.access import access_report
from console.services.grants import Outcome, Target, grant, parse_duration, revoke


def _show(outcome: Outcome, as_json: bool) -> None:
    if as_json:
        emit_json(outcome.to_json())
        return
    click.echo(outcome.summary)
    for line in outcome.notes:
        note(line)


def register(cli: click.Group) -> None:
    @cli.command("grant")
    @click.argument("agent")
    @click.argument("target", metavar="TOOLBOX[/SERVER[/TOOL]]")
    @click.option("--for", "duration", metavar="DURATION", help="Let the grant expire, e.g. 30m, 8h, 7d.")
    @json_option
    @pass_state
    def grant_cmd(state: CliState, agent: str, target: str, duration: str | None, as_json: bool) -> None:
        """Give an agent a toolbox, a whole server or one tool."""
        span = parse_duration(duration) if duration else None
        _show(grant(state.workspace(), agent, Target.parse(target), span), as_json)

    @cli.command("revoke")
    @click.argument("agent")
    @click.argument("target", metavar="TOOLBOX[/SERVER[/TOOL]]")
    @json_option
    @pass_state
    def revoke_cmd(state: CliState, agent: str, target: str, as_json: bool) -> None:
        """Take away a toolbox (kill switch), a server's grants or one tool grant."""
        _show(revoke(state.workspace(), agent, Target.parse(target)), as_json)

    @cli.command("access")
    @click.argument("agent")
    @click.option("--all", "everything", is_flag=True, help="Also list tools the agent holds no grant for.")
    @json_option
    @pass_state
    def access_cmd(state: CliState, agent: str, everything: bool, as_json: bool) -> None:
        """Show the agent's effective tool surface, and why."""
        report = access_report(state.workspace(), agent, everything=everything)
        if as_json:
            emit_json(report.to_json())
            return
        click.echo(f"agent {report.agent} ({'enabled' if report.enabled else 'DISABLED'}): "
                   f"{len(report.allowed)} tool(s) callable now")
        if not report.toolboxes:
            click.echo("  no access to any toolbox")
        for section in report.toolboxes:
            state_word = "open" if section.granted else "closed (no toolbox grant)"
            click.echo(f"toolbox {section.name}: {state_word}")
            width = max((len(f"{t.server}/{t.tool}") for t in section.tools), default=0)
            for t in section.tools:
                mark = "allow" if t.allowed else "deny "
                click.echo(f"  {mark}  {f'{t.server}/{t.tool}':<{width}}  {t.why}")
