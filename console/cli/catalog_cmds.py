"""``tbx catalog ...``: the servers tbx knows how to build and run."""

from __future__ import annotations

import click

from console.catalog import load_catalog
from console.catalog.model import CatalogEntry
from console.cli.base import CliState, emit_json, json_option, pass_state, print_table


def source_label(entry: CatalogEntry) -> str:
    package = entry.source.package
    if entry.remote is not None:
        return f"remote:{entry.remote.url}"
    if package is None:
        return entry.source.image or "-"
    if package.kind == "pypi":
        return f"pypi:{package.package}=={package.version}"
    return f"npm:{package.package}@{package.version}"


def needs_label(entry: CatalogEntry) -> str:
    """What the user must supply before the server can start, in a few words."""
    parts: list[str] = []
    if entry.oauth is not None:
        parts.append(f"oauth:{entry.oauth.provider}")
    required_secrets = [s for s in entry.secrets if s.required]
    if required_secrets:
        parts.append(f"{len(required_secrets)} secret" + ("s" if len(required_secrets) > 1 else ""))
    parts.extend(f"mount:{m.target}{':ro' if m.read_only else ''}" for m in entry.mounts if m.required)
    return ", ".join(parts) or "-"


def register(cli: click.Group) -> None:
    @cli.group()
    def catalog() -> None:
        """The server catalog: built-in entries plus your catalog.json."""

    @catalog.command("list")
    @json_option
    @pass_state
    def list_(state: CliState, as_json: bool) -> None:
        """List catalog entries."""
        entries = load_catalog(state.paths).entries()
        if as_json:
            emit_json([e.model_dump(mode="json") for e in entries])
            return
        print_table(
            ["ID", "TITLE", "SOURCE", "NETWORK", "NEEDS", "ORIGIN"],
            [[e.id, e.title, source_label(e), e.network, needs_label(e), e.origin] for e in entries],
            empty="the catalog is empty",
        )
