"""``tbx``: the scripting surface of Toolbox Console. Bare ``tbx`` opens the console."""

from __future__ import annotations

import functools
import gc
import importlib
from collections.abc import Iterator, Mapping
from typing import Any

import click

from console import __version__
from console.cli.base import CliState, CommandFailed, TbxGroup
from console.logsetup import log_to_file, log_to_stderr, record_crash

COMMANDS = {
    "doctor": "system_cmds", "locate": "system_cmds",
    "init": "vault_cmds", "vault": "vault_cmds",
    "toolbox": "toolbox_cmds",
    "catalog": "catalog_cmds",
    "server": "server_cmds",
    "call": "tools_cmds", "tools": "tools_cmds",
    "agent": "agent_cmds",
    "access": "access_cmds", "grant": "access_cmds", "revoke": "access_cmds",
    "client-config": "gateway_cmds", "connect": "gateway_cmds", "gateway": "gateway_cmds",
    "import": "import_cmds",
    "audit": "audit_cmds",
    "connection": "connection_cmds",
    "approvals": "approvals_cmds",
}
"""Each top-level command and the module that registers it. A command imports only its
own module: a script's ``tbx revoke`` is not kept waiting by the scanner's patterns, the
importers and the gateway (a third of its start-up before)."""


class LazyCommands(Mapping[str, click.Command]):
    """``cli.commands``, importing a command's module when the command is looked up."""

    def __getitem__(self, name: str) -> click.Command:
        return commands_of(COMMANDS[name])[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(COMMANDS))

    def __len__(self) -> int:
        return len(COMMANDS)


class LazyGroup(TbxGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands()  # type: ignore[assignment]


@functools.cache
def commands_of(module: str) -> dict[str, click.Command]:
    """The commands ``console.cli.<module>`` registers, by name."""
    holder = click.Group()
    importlib.import_module(f"console.cli.{module}").register(holder)
    return holder.commands


@click.group(cls=LazyGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logging: on stderr for a command; the console "
              "(tbx alone) writes its log to logs/console.log in its state folder (tbx locate prints it).")
@click.version_option(__version__, prog_name="tbx")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Toolbox Console: MCP servers in hardened containers, granted to agents tool by tool."""
    ctx.obj = CliState(debug=debug)
    if ctx.invoked_subcommand is None:
        # What the console makes until its first paint (modules, the vault's tables, the first
        # screen) lives as long as it: collections walk it again and again and free nothing
        # (50-75 ms before the first paint with the bench's vault). Once its first screen is
        # drawn, ConsoleApp freezes what it has and collections resume.
        gc.disable()
        try:
            from console.tui.app import run_console

            log = log_to_file(ctx.obj.paths, debug)  # lines on the terminal would draw over the console
            failure = run_console(log if debug else None)
        finally:
            gc.enable()
        if failure is not None:
            where = record_crash(ctx.obj.paths, "the console", failure)
            raise CommandFailed(f"the console stopped on {type(failure).__name__}: {failure}"
                                + (f" (its traceback is in {where})" if where else ""))
    else:
        log_to_stderr(debug)


def main() -> None:
    cli(prog_name="tbx")
