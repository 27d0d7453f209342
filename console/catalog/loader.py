"""The catalog as the console sees it: the built-in entries plus the user's own file.

The built-in entries ship as package data (``builtin.json``), so they are data, not
code: adding a server is editing JSON. The user's ``catalog.json`` in the config
directory adds entries or replaces built-in ones by id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from console.catalog.model import CatalogEntry
from console.errors import NotFound, TbxError
from console.paths import Paths

BUILTIN_RESOURCE = "builtin.json"


class CatalogError(TbxError):
    """A catalog file cannot be read, is not JSON, or holds an entry that does not validate."""


@dataclass
class Catalog:
    """Entries by id. Later sources override earlier ones (user over built-in)."""

    by_id: dict[str, CatalogEntry] = field(default_factory=dict)

    def get(self, entry_id: str) -> CatalogEntry:
        try:
            return self.by_id[entry_id]
        except KeyError:
            raise NotFound(f"no catalog entry {entry_id!r}; 'tbx catalog list' shows them") from None

    def entries(self) -> list[CatalogEntry]:
        return [self.by_id[key] for key in sorted(self.by_id)]

    def find_package(self, kind: str, package: str) -> CatalogEntry | None:
        """The entry built from this package, so an import can reuse what we know about it."""
        for entry in self.entries():
            source = entry.source.package
            if source is not None and source.kind == kind and source.package == package:
                return entry
        return None

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self.by_id

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self.entries())

    def __len__(self) -> int:
        return len(self.by_id)


def load_catalog(paths: Paths) -> Catalog:
    catalog = Catalog()
    for entry in load_builtin():
        catalog.by_id[entry.id] = entry
    if paths.catalog_file.exists():
        for entry in load_user_file(paths.catalog_file):
            catalog.by_id[entry.id] = entry
    return catalog


def load_builtin() -> list[CatalogEntry]:
    resource = resources.files("console.catalog").joinpath(BUILTIN_RESOURCE)
    try:
        text = resource.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"the built-in catalog is missing ({exc}); reinstall toolbox-console") from exc
    return parse_entries(text, f"built-in catalog {BUILTIN_RESOURCE}", "builtin")


def load_user_file(path: Path) -> list[CatalogEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"cannot read catalog file {path}: {exc}; fix its permissions or remove it") from exc
    return parse_entries(text, f"catalog file {path}", "user")


def parse_entries(text: str, where: str, origin: Literal["builtin", "user"]) -> list[CatalogEntry]:
    """Entries from a JSON list or ``{"servers": [...]}``, each stamped with ``origin``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(
            f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); fix it"
        ) from None
    raw = data.get("servers") if isinstance(data, dict) else data
    if not isinstance(raw, list):
        raise CatalogError(f'{where}: expected a list of entries or {{"servers": [...]}}; fix the top level')
    entries: list[CatalogEntry] = []
    seen: set[str] = set()
    for index, item in enumerate(raw, start=1):
        label = _label(item, index)
        if not isinstance(item, dict):
            raise CatalogError(f"{where}: {label} is not a JSON object; fix or remove it")
        try:
            # The file does not get to say where an entry comes from: the loader knows.
            entry = CatalogEntry.model_validate({**item, "origin": origin})
        except ValidationError as exc:
            raise CatalogError(f"{where}: {label}: {_first_problem(exc)}; fix or remove the entry") from None
        if entry.id in seen:
            raise CatalogError(f"{where}: {label} appears more than once; keep one")
        seen.add(entry.id)
        entries.append(entry)
    return entries


def _label(item: Any, index: int) -> str:
    if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]:
        return f"entry {item['id']!r}"
    return f"entry #{index}"


def _first_problem(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    loc = ".".join(str(part) for part in first["loc"]) or "entry"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"field {loc}: {first['msg']}{more}"
