"""``tbx grant``, ``tbx revoke`` and ``tbx access``."""

from __future__ import annotations

import click

from console.cli.base import CliState, emit_json, json_option, note, pass_state
from console.model import ItemKind
from console.services.access import access_report
from console.services.grants import ITEM_SYNTAX, Outcome, Target, grant, parse_duration, revoke
from console.services.items import plural

TARGET_HELP = (f"TARGET is TOOLBOX (its kill switch), TOOLBOX/SERVER (every item of the server: tools, resources, "
               f"templates and prompts) or TOOLBOX/SERVER/ITEM; {ITEM_SYNTAX}. The target is split at its first "
               f"two '/' only, so URIs keep theirs: local/everything/resource:demo://resource/static/document/x.md. "
               f"'tbx tools list' shows every item's target.")
HEADINGS = {ItemKind.TOOL: "tools", ItemKind.RESOURCE: "resources", ItemKind.TEMPLATE: "resource templates",
            ItemKind.PROMPT: "prompts"}


def _show(outcome: Outcome, as_json: bool) -> None:
    if as_json:
        emit_json(outcome.to_json())
        return
    click.echo(outcome.summary)
    for line in outcome.notes:
        note(line)


def register(cli: click.Group) -> None:
    @cli.command("grant", epilog=TARGET_HELP)
    @click.argument("agent")
    @click.argument("target", metavar="TOOLBOX[/SERVER[/ITEM]]")
    @click.option("--for", "duration", metavar="DURATION", help="Let the grant expire, e.g. 30m, 8h, 7d.")
    @click.option("--ask", is_flag=True, help="Hold each call until the owner approves it ('tbx approvals').")
    @json_option
    @pass_state
    def grant_cmd(state: CliState, agent: str, target: str, duration: str | None, ask: bool, as_json: bool) -> None:
        """Give an agent a toolbox, a whole server, or one tool, resource, template or prompt."""
        span = parse_duration(duration) if duration else None
        _show(grant(state.workspace(), agent, Target.parse(target), span, ask=ask), as_json)

    @cli.command("revoke", epilog=TARGET_HELP)
    @click.argument("agent")
    @click.argument("target", metavar="TOOLBOX[/SERVER[/ITEM]]")
    @json_option
    @pass_state
    def revoke_cmd(state: CliState, agent: str, target: str, as_json: bool) -> None:
        """Take away a toolbox (kill switch), a server's grants or one item's grant."""
        _show(revoke(state.workspace(), agent, Target.parse(target)), as_json)

    @cli.command("access")
    @click.argument("agent")
    @click.option("--all", "everything", is_flag=True, help="Also list items the agent holds no grant for.")
    @json_option
    @pass_state
    def access_cmd(state: CliState, agent: str, everything: bool, as_json: bool) -> None:
        """Show the agent's effective surface (tools, resources, templates, prompts), and why."""
        report = access_report(state.workspace(), agent, everything=everything)
        if as_json:
            emit_json(report.to_json())
            return
        usable = [t.tool for _box, t in report.allowed]
        click.echo(f"agent {report.agent} ({'enabled' if report.enabled else 'DISABLED'}): "
                   f"{plural(usable) if usable else 'nothing'} usable now")
        if not report.toolboxes:
            click.echo("  no access to any toolbox")
        for section in report.toolboxes:
            state_word = "open" if section.granted else "closed (no toolbox grant)"
            click.echo(f"toolbox {section.name}: {state_word}")
            width = max((len(f"{t.server}/{t.tool}") for t in section.tools), default=0)
            for kind, heading in HEADINGS.items():
                items = [t for t in section.tools if t.kind == kind]
                if items:
                    click.echo(f"  {heading}:")
                for t in items:
                    mark = ("ask  " if t.ask else "allow") if t.allowed else "deny "
                    click.echo(f"    {mark}  {f'{t.server}/{t.tool}':<{width}}  {t.why}")
