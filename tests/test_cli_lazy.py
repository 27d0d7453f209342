"""The top-level commands load lazily: the map names every command its modules register."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import click
import click.testing

import console.cli
from console.cli import COMMANDS, cli


def test_every_registered_command_is_in_the_map() -> None:
    registered: dict[str, str] = {}
    for info in pkgutil.iter_modules(console.cli.__path__):
        module = importlib.import_module(f"console.cli.{info.name}")
        if hasattr(module, "register"):
            holder = click.Group()
            module.register(holder)
            registered.update(dict.fromkeys(holder.commands, info.name))
    assert registered == COMMANDS


def test_a_command_imports_only_its_own_module() -> None:
    probe = ("import sys; from console.cli import cli; "
             "cli.get_command(None, 'revoke'); "
             "print(sorted(m for m in sys.modules if m.startswith('console.cli.') or m == 'console.trust.scan'))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "console.cli.access_cmds" in loaded
    assert "console.cli.tools_cmds" not in loaded and "console.trust.scan" not in loaded


def test_tbx_import_loads_the_runtime_only_to_add_servers() -> None:
    """A dry run (a plan printed) must not wait for the Docker SDK and the MCP client."""
    probe = ("import sys; from console.cli import cli; cli.get_command(None, 'import'); "
             "print('console.services.servers' in sys.modules, 'console.services.imports' in sys.modules)")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.split() == ["False", "False"]


def test_a_mistyped_command_is_still_suggested() -> None:
    result = click.testing.CliRunner().invoke(cli, ["revok"])
    assert result.exit_code == 2 and "revoke" in result.output
