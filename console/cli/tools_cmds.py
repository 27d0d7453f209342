"""``tbx tools ...`` and ``tbx call``."""

from __future__ import annotations

import contextlib
import json

import click

from console.cli.base import CliState, emit_json, fail, json_option, pass_state, print_table
from console.errors import UsageError


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


def register(cli: click.Group) -> None:
    @cli.group()
    def tools() -> None:
        """List discovered tools and approve them."""

    @tools.command("list")
    @click.argument("scope", required=False, metavar="[TOOLBOX[/SERVER]]")
    @json_option
    @pass_state
    def list_(state: CliState, scope: str | None, as_json: bool) -> None:
        """List discovered tools with their trust state."""
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
                for tool in sorted(ws.repos.tools.of_server(server.id), key=lambda t: t.name):
                    rows.append((box, server, tool))
        if as_json:
            emit_json([{"toolbox": b.name, "server": s.name, **t.model_dump(mode="json", exclude={"server"})}
                       for b, s, t in rows])
            return
        print_table(
            ["TOOL", "TRUST", "FINDINGS", "DESCRIPTION"],
            [[f"{b.name}/{s.name}/{t.name}", t.trust.value, len(t.findings) or "-", _first_line(t.description)]
             for b, s, t in rows],
            empty="no tools discovered yet: add a server with 'tbx server add'",
        )

    @tools.command()
    @click.argument("target", metavar="TOOLBOX/SERVER[/TOOL]")
    @pass_state
    def approve(state: CliState, target: str) -> None:
        """Approve a tool (or every tool of a server): pin its definition and expose it."""
        from console.services.tools import approve as approve_tools

        parts = target.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise UsageError(f"bad target {target!r}: use TOOLBOX/SERVER or TOOLBOX/SERVER/TOOL")
        approved = approve_tools(state.workspace(), parts[0], parts[1], parts[2] if len(parts) == 3 else None)
        click.echo(f"approved {len(approved)} tool(s)" + (f": {', '.join(approved)}" if approved else " (all already approved)"))

    @cli.command("call")
    @click.argument("target", metavar="TOOLBOX/SERVER/TOOL")
    @click.option("--args", "args_json", default="{}", metavar="JSON", help="Tool arguments as a JSON object.")
    @click.option("--timeout", type=float, help="Seconds to wait for the result.")
    @json_option
    @pass_state
    def call(state: CliState, target: str, args_json: str, timeout: float | None, as_json: bool) -> None:
        """Call a tool directly as the owner and print the result."""
        from console.services.server_status import call_tool

        try:
            arguments = json.loads(args_json)
        except ValueError as exc:
            raise UsageError(f"--args is not valid JSON: {exc}") from None
        if not isinstance(arguments, dict):
            raise UsageError("--args must be a JSON object, e.g. '{\"timezone\": \"UTC\"}'")
        outcome = call_tool(state.workspace(), target, arguments, timeout)
        if as_json:
            emit_json(outcome.result.model_dump(by_alias=True, mode="json", exclude_none=True))
        else:
            for line in render_result(outcome.result):
                click.echo(line)
        if outcome.result.is_error:
            fail(f"{target} returned an error")
