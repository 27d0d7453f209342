"""Small helpers for a server's items (tools, resources, templates, prompts), light enough
for every CLI command to import: ordering, counting, naming them in audit records and errors."""

from __future__ import annotations

from collections.abc import Iterable

from console.errors import NotFound
from console.model import ItemKind, ToolDef, split_ref

KIND_ORDER = {kind: index for index, kind in enumerate(ItemKind)}


def item_order(item: ToolDef) -> tuple[int, str]:
    """Tools first, then resources, templates and prompts; by name within a kind."""
    return KIND_ORDER[item.kind], item.name


def ref_order(ref: str) -> tuple[int, str]:
    """``item_order`` for a ref."""
    kind, name = split_ref(ref)
    return KIND_ORDER[kind], name


def audit_target(kind: ItemKind, label: str, name: str) -> str:
    """``prompt:local/everything/simple-prompt``: the kind, then toolbox/server/name."""
    return f"{kind.value}:{label}/{name}"


def plural(refs: Iterable[str]) -> str:
    """``3 tool(s), 1 prompt(s)``: how many refs of each kind, in the kinds' order."""
    counts: dict[ItemKind, int] = {}
    for ref in refs:
        kind = split_ref(ref)[0]
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{counts[kind]} {kind.value}(s)" for kind in ItemKind if kind in counts) or "0 item(s)"


def no_item(toolbox: str, server: str, ref: str) -> NotFound:
    kind, name = split_ref(ref)
    return NotFound(f"{toolbox}/{server} has no {kind.value} {name!r}; 'tbx tools list {toolbox}/{server}' "
                    f"lists its tools, resources, templates and prompts")
