"""``tbx tools ...`` and ``tbx call``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex

import click

from console.cli.base import CliState, emit_json, fail, json_option, pass_state, print_table
from console.errors import UsageError
from console.services.grants import Target
from console.services.items import item_order, plural
from console.model import ItemKind, ToolDef
from console.trust.pinning import definition_diff, pretty_definition
from console.trust.scan import KINDS, blocking_kinds, decode_hidden, finding_kinds


def _first_line(text: str | None, width: int = 70) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def render_result(result) -> list[str]:  # noqa: ANN001 - mcp CallToolResult
    """A tool result as a person reads it: text as is, JSON pretty, binaries as a note."""
    lines: list[str] = []
    for block in result.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            text = block.text
            with contextlib.suppress(ValueError):
                text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            lines.append(text)
        elif kind in ("image", "audio"):
            lines.append(f"[{kind}: {block.mime_type}, {len(block.data) * 3 // 4} bytes]")
        elif kind == "resource_link":
            lines.append(f"[resource link: {block.uri}]")
        elif kind == "resource":
            lines.append(f"[embedded resource: {block.resource.uri}]")
        else:
            lines.append(f"[{kind} content]")
    if not lines and result.structured_content is not None:
        lines.append(json.dumps(result.structured_content, indent=2, ensure_ascii=False))
    return lines


def show_lines(target: str, tool: ToolDef, diff: str | None) -> list[str]:
    """``tbx tools show`` as a person reads it: state first, then what the model is told."""
    lines = [
        target,
        f"  kind:          {tool.kind.value}",
        f"  trust:         {tool.trust.value}" + ("" if tool.exposable else " (not exposed to agents)"),
        f"  pin:           {tool.pin}",
        f"  approved pin:  {tool.approved_pin or '-'}",
        f"  discovered:    {tool.discovered.isoformat(timespec='seconds')}",
    ]
    if tool.findings:
        blocking = blocking_kinds(tool.findings)
        accept = f"approve with --accept {','.join(blocking)}" if blocking else "low only: approving accepts them"
        lines.append(f"findings ({len(tool.findings)}); {accept}:")
        lines += [f"  {f.severity:<6}  {f.kind:<19}  {f.message}" for f in tool.findings]
    else:
        lines.append("findings: none")
    lines.append("description:")
    lines += [f"  {line}" for line in decode_hidden(tool.description or "(none)").splitlines()]
    if tool.kind is not ItemKind.TOOL:
        lines.append("definition:")
        lines += [f"  {line}" for line in pretty_definition(tool.pinned_definition())]
    for title, value in (("input schema", tool.input_schema), ("output schema", tool.output_schema),
                         ("annotations", tool.annotations)):
        if value:
            lines.append(f"{title}:")
            lines += [f"  {line}" for line in pretty_definition(value)]
    if diff:
        lines.append("changed since approval (approved -> live):")
        lines += [f"  {line}" for line in diff.splitlines()]
    return lines


ITEM_HELP = ("ITEM is a tool name, prompt:NAME, resource:URI or template:URITEMPLATE (tool:NAME for a tool whose "
             "name starts like those); the target is split at its first two '/' only, so URIs keep theirs.")


def _item_target(text: str, *, item_required: bool) -> Target:
    target = Target.parse(text)
    if target.server is None or (item_required and target.tool is None):
        shape = "TOOLBOX/SERVER/ITEM" if item_required else "TOOLBOX/SERVER or TOOLBOX/SERVER/ITEM"
        raise UsageError(f"bad target {text!r}: use {shape}, e.g. local/time/get_current_time or "
                         f"local/everything/prompt:simple-prompt")
    return target


def register(cli: click.Group) -> None:
    @cli.group()
    def tools() -> None:
        """List discovered tools, resources, templates and prompts, and approve them."""

    @tools.command("list")
    @click.argument("scope", required=False, metavar="[TOOLBOX[/SERVER]]")
    @click.option("--kind", "kinds", multiple=True, type=click.Choice([k.value for k in ItemKind]),
                  help="Only items of this kind (repeatable).")
    @json_option
    @pass_state
    def list_(state: CliState, scope: str | None, kinds: tuple[str, ...], as_json: bool) -> None:
        """List every discovered item (tools, resources, resource templates, prompts) with its
        kind and trust state. The first column is the target 'tbx tools show|approve' and
        'tbx grant' take."""
        ws = state.workspace()
        toolbox_name, _sep, server_name = (scope or "").partition("/")
        boxes = [ws.repos.toolboxes.require(toolbox_name)] if toolbox_name else list(ws.repos.toolboxes)
        rows = []
        for box in sorted(boxes, key=lambda b: b.name):
            servers = ws.repos.servers.in_toolbox(box.id)
            if server_name:
                servers = [s for s in servers if s.name == server_name]
                if not servers:
                    raise UsageError(f"toolbox {box.name} has no server {server_name!r}")
            for server in sorted(servers, key=lambda s: s.name):
                for tool in sorted(ws.repos.tools.of_server(server.id), key=item_order):
                    if not kinds or tool.kind.value in kinds:
                        rows.append((box, server, tool))
        if as_json:
            emit_json([{"toolbox": b.name, "server": s.name, "ref": t.ref,
                        **t.model_dump(mode="json", exclude={"server"})} for b, s, t in rows])
            return
        print_table(
            ["ITEM", "KIND", "TRUST", "FINDINGS", "DESCRIPTION"],
            [[f"{b.name}/{s.name}/{t.ref}", t.kind.value, t.trust.value, ",".join(finding_kinds(t.findings)) or "-",
              _first_line(decode_hidden(t.description or t.title or ""))]
             for b, s, t in rows],
            empty="nothing discovered yet: add a server with 'tbx server add'",
        )

    @tools.command(epilog=ITEM_HELP)
    @click.argument("target", metavar="TOOLBOX/SERVER[/ITEM]")
    @click.option("--accept", "accept", multiple=True, metavar="KIND[,KIND...]",
                  help=f"Approve despite findings of these kinds ({', '.join(KINDS)}).")
    @pass_state
    def approve(state: CliState, target: str, accept: tuple[str, ...]) -> None:
        """Approve an item (or every item of every kind of a server): pin its definition and
        expose it to the agents granted it.

        An item with findings (see 'tbx tools show') is approved only when --accept names
        every kind of finding it has; approving a whole server skips such items.
        """
        from console.services.tools import approve as approve_items
        from console.services.tools import parse_kinds

        parsed = _item_target(target, item_required=False)
        kinds = parse_kinds(accept)  # unknown kinds are a usage error before the vault opens
        result = approve_items(state.workspace(), parsed.toolbox, parsed.server, parsed.tool, kinds)
        done = result.approved
        if done or not (result.skipped or result.blocked):
            click.echo(f"approved {plural(done)}" + (f": {', '.join(done)}" if done else " (all already approved)"))
        server = f"{parsed.toolbox}/{parsed.server}"
        for ref in result.blocked:
            click.echo(f"left blocked: {server}/{ref}; approve it by name to unblock it")
        for ref, kinds in sorted(result.skipped.items()):
            typed = shlex.quote(f"{server}/{ref}")
            click.echo(f"skipped {server}/{ref}: findings {','.join(kinds)}; review with "
                       f"'tbx tools show {typed}', then 'tbx tools approve {typed} --accept {','.join(kinds)}'")

    @tools.command(epilog=ITEM_HELP)
    @click.argument("target", metavar="TOOLBOX/SERVER[/ITEM]")
    @pass_state
    def unapprove(state: CliState, target: str) -> None:
        """Take back the approval of an item (or of every item of a server): it is hidden
        from every agent until approved again; grants to it are kept."""
        from console.services.tools import unapprove as unapprove_items

        parsed = _item_target(target, item_required=False)
        taken = unapprove_items(state.workspace(), parsed.toolbox, parsed.server, parsed.tool)
        click.echo(f"approval taken back from {plural(taken)}: {', '.join(taken)}" if taken else
                   "nothing was approved: nothing changed")

    @tools.command(epilog=ITEM_HELP)
    @click.argument("target", metavar="TOOLBOX/SERVER[/ITEM]")
    @click.option("--undo", is_flag=True, help="Unblock instead: the item goes back to pending approval.")
    @pass_state
    def block(state: CliState, target: str, undo: bool) -> None:
        """Block an item (or every item of a server): no agent sees or calls it whatever its
        grants say, through rediscovery and changes, until it is approved by name again."""
        from console.services.tools import block as block_items

        parsed = _item_target(target, item_required=False)
        changed = block_items(state.workspace(), parsed.toolbox, parsed.server, parsed.tool, blocked=not undo)
        verb = "unblocked (pending approval)" if undo else "blocked"
        click.echo(f"{verb}: {plural(changed)}: {', '.join(changed)}" if changed else
                   f"already {'not blocked' if undo else 'blocked'}: nothing changed")

    @tools.command(epilog=ITEM_HELP)
    @click.argument("target", metavar="TOOLBOX/SERVER/ITEM")
    @json_option
    @pass_state
    def show(state: CliState, target: str, as_json: bool) -> None:
        """Show a tool, resource, template or prompt: its definition with hidden characters
        made visible, its trust state, pins, findings, and for a changed item the diff from
        the approved definition."""
        from console.services.tools import definition, find_tool

        parsed = _item_target(target, item_required=True)
        assert parsed.server is not None and parsed.tool is not None
        _server, tool = find_tool(state.workspace().repos, parsed.toolbox, parsed.server, parsed.tool)
        diff = definition_diff(tool.previous, definition(tool)) if tool.previous else None
        if as_json:
            emit_json({"toolbox": parsed.toolbox, "server": parsed.server, "ref": tool.ref,
                       **tool.model_dump(mode="json", exclude={"server"}),
                       "description_visible": decode_hidden(tool.description or ""), "diff": diff})
            return
        for line in show_lines(f"{parsed.toolbox}/{parsed.server}/{tool.ref}", tool, diff):
            click.echo(line)

    @cli.command("call")
    @click.argument("target", metavar="TOOLBOX/SERVER/TOOL")
    @click.option("--args", "args_json", default="{}", metavar="JSON", help="Tool arguments as a JSON object.")
    @click.option("--timeout", type=float, help="Seconds to wait for the result.")
    @click.option("--as", "as_agent", metavar="AGENT",
                  help="Go through the running gateway as this agent: get exactly what it would get.")
    @json_option
    @pass_state
    def call(state: CliState, target: str, args_json: str, timeout: float | None, as_agent: str | None,
             as_json: bool) -> None:
        """Call a tool and print the result: directly as the owner, or as an agent through the gateway."""
        try:
            arguments = json.loads(args_json)
        except ValueError as exc:
            raise UsageError(f"--args is not valid JSON: {exc}") from None
        if not isinstance(arguments, dict):
            raise UsageError("--args must be a JSON object, e.g. '{\"timezone\": \"UTC\"}'")
        if as_agent:
            from console.cli.gateway_cmds import gateway_url
            from console.gateway.agentcall import call_as

            url = gateway_url(state, target.split("/")[0])
            result = asyncio.run(call_as(state.workspace(), url, as_agent, target, arguments))
        else:
            from console.services.server_status import call_tool

            result = call_tool(state.workspace(), target, arguments, timeout).result
        if as_json:
            emit_json(result.model_dump(by_alias=True, mode="json", exclude_none=True))
        else:
            for line in render_result(result):
                click.echo(line)
        if result.is_error:
            fail(f"{target} returned an error")
