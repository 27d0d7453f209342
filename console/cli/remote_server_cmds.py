"""``tbx server add TOOLBOX --url URL --name NAME [--header NAME=VAR]...``: a remote server."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from console.cli.base import interactive
from console.errors import UsageError
from console.services.items import plural

if TYPE_CHECKING:
    from console.workspace import Workspace


def remote_server_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed([
        click.option("--url", help="A remote server's MCP endpoint (https://...), instead of CATALOG_ID."),
        click.option("--header", "header", multiple=True, metavar="NAME=VAR",
                     help="A remote server's HTTP header, its value from env var VAR or a hidden prompt; "
                          "kept in the vault. Repeatable."),
        click.option("--transport", type=click.Choice(["streamable-http", "sse"]), default="streamable-http",
                     show_default=True, help="How a remote server is reached (Streamable HTTP falls back to SSE)."),
    ]):
        command = option(command)
    return command


def read_header(spec: str) -> tuple[str, str]:
    """``NAME=VAR``: the header's value from the environment variable VAR, or asked for,
    hidden, when VAR is unset (a value typed on the command line would land in history)."""
    name, sep, var = spec.partition("=")
    if not sep or not name or not var:
        raise UsageError(f"bad --header {spec!r}: use NAME=VAR (the value is read from the environment variable VAR)")
    if var in os.environ:
        return name, os.environ[var]
    if not interactive():
        raise UsageError(f"no value for header {name}: set the environment variable {var}")
    return name, getpass.getpass(f"{name} ({var}): ")


def add_remote(ws: Workspace, toolbox: str, url: str, name: str | None, header: tuple[str, ...],
               transport: str) -> None:
    from console.services.remote_servers import add_remote_server

    if not name:
        raise UsageError("a remote server needs --name NAME")
    headers = dict(read_header(h) for h in header)
    created = add_remote_server(ws, toolbox, url, name=name, headers=headers,
                                transport="sse" if transport == "sse" else "streamable-http", progress=lambda line: click.echo(f"  {line}", err=True))
    found = plural(item.ref for item in ws.repos.tools.of_server(created.id))
    click.echo(f"remote server {toolbox}/{created.name} answers with {found}, pending approval")
    click.echo(f"next: 'tbx tools list {toolbox}/{created.name}', then 'tbx tools approve {toolbox}/{created.name}'")
