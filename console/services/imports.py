"""Carry out an import plan (``console.catalog.importer`` makes it): add each planned
server to a toolbox, one at a time.

One server failing (a name taken, a build that breaks) does not stop the others; each
failure is kept as one line for the summary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from console.catalog.importer import ImportItem, ImportPlan, PendingInput, Skipped
from console.catalog.remote_import import RemoteItem
from console.errors import NotFound, TbxError
from console.services.remote_servers import add_remote_server
from console.services.servers import add_server
from console.workspace import Workspace

AskInput = Callable[[ImportItem | RemoteItem, PendingInput], str | None]
"""Asks the user for a value the file did not hold; None when nobody can answer."""


@dataclass
class Failure:
    name: str
    reason: str


@dataclass
class ApplyOutcome:
    toolbox: str
    added: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{len(self.added)} added to toolbox {self.toolbox}, {len(self.skipped)} skipped, "
                f"{len(self.failed)} failed")

    def to_json(self) -> dict[str, Any]:
        return {"toolbox": self.toolbox, "added": self.added, "failed": [asdict(f) for f in self.failed],
                "skipped": [asdict(s) for s in self.skipped]}


def apply_plan(
    ws: Workspace,
    plan: ImportPlan,
    toolbox: str = "local",
    *,
    ask: AskInput | None = None,
    progress: Callable[[str], None] | None = None,
    on_item: Callable[[str, str | None], None] | None = None,
) -> ApplyOutcome:
    """Add every item of ``plan``; ``on_item(name, error or None)`` hears about each one."""
    if ws.repos.toolboxes.by_name(toolbox) is None:
        raise NotFound(f"no toolbox named {toolbox!r}; add it with 'tbx toolbox add {toolbox} --local' "
                       "or pass --toolbox NAME")
    outcome = ApplyOutcome(toolbox=toolbox, skipped=list(plan.skipped))
    for item in [*plan.items, *plan.remotes]:
        try:
            if isinstance(item, RemoteItem):
                add_remote_server(ws, toolbox, item.url, name=item.name, headers=_fill_headers(item, ask),
                                  transport=item.transport, progress=progress)
            else:
                env, secrets = _fill_inputs(item, ask)
                add_server(ws, toolbox, item.entry, name=item.name, env=env, secrets=secrets,
                           mounts=list(item.mounts), progress=progress)
        except TbxError as exc:
            error = str(exc)
        except Exception as exc:  # one broken server must not stop the rest of the import
            error = f"unexpected {type(exc).__name__}: {exc}"
        else:
            outcome.added.append(item.name)
            if on_item:
                on_item(item.name, None)
            continue
        outcome.failed.append(Failure(item.name, error))
        if on_item:
            on_item(item.name, error)
    return outcome


def _fill_headers(item: RemoteItem, ask: AskInput | None) -> dict[str, str]:
    """The remote server's headers, the ones the file did not hold asked for (as secrets)."""
    headers = dict(item.headers)
    for wanted in item.inputs:
        value = ask(item, PendingInput(wanted.header, wanted.label, secret=True)) if ask else None
        if not value:
            raise TbxError(f"needs a value for header {wanted.header} ({wanted.label}); run 'tbx import' in a "
                           "terminal to be asked for it")
        headers[wanted.header] = wanted.value(value)
    return headers


def _fill_inputs(item: ImportItem, ask: AskInput | None) -> tuple[dict[str, str], dict[str, str]]:
    env, secrets = dict(item.env), dict(item.secrets)
    for pending in item.inputs:
        value = ask(item, pending) if ask else None
        if not value:
            raise TbxError(f"needs a value for {pending.env} ({pending.label}); run 'tbx import' in a terminal "
                           "to be asked for it")
        (secrets if pending.secret else env)[pending.env] = value
    return env, secrets
