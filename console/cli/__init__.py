"""``tbx``: the scripting surface of Toolbox Console. Bare ``tbx`` opens the console."""

from __future__ import annotations

import logging

import click

from console import __version__
from console.cli import (
    access_cmds,
    agent_cmds,
    audit_cmds,
    catalog_cmds,
    connection_cmds,
    gateway_cmds,
    import_cmds,
    server_cmds,
    system_cmds,
    toolbox_cmds,
    tools_cmds,
    vault_cmds,
)
from console.cli.base import CliState, TbxGroup


@click.group(cls=TbxGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logging.")
@click.version_option(__version__, prog_name="tbx")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Toolbox Console: MCP servers in hardened containers, granted to agents tool by tool."""
    ctx.obj = CliState(debug=debug)
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if ctx.invoked_subcommand is None:
        from console.tui.app import run_console

        run_console()


COMMAND_MODULES = (
    system_cmds, vault_cmds, toolbox_cmds, catalog_cmds, server_cmds, tools_cmds, agent_cmds, access_cmds,
    gateway_cmds, import_cmds, audit_cmds, connection_cmds,
)
for module in COMMAND_MODULES:
    module.register(cli)


def main() -> None:
    cli(prog_name="tbx")
