"""Droplets tbx made that no toolbox owns: kept in the vault until destroyed or adopted.

A droplet is billed from its create to its delete. When adding a droplet toolbox fails
and the clean-up cannot delete the droplet (its create still runs, the API does not show
it yet), the droplet is in the vault before the first DELETE is sent: nothing billed is
forgotten, whatever happens next. A scan asks DigitalOcean for the droplets tagged ``tbx``
that no toolbox owns and records them too. An add in progress leaves a note in the state
folder (no secret in it); a note whose process is gone is an add that never finished,
and its droplet is looked up by name, as its tag may not apply yet.

Droplets tagged by another installation (``tbx-home-<id>``: two machines may share an
account) are listed by the scan and never touched.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from console.errors import NotFound, TbxError
from console.model import Orphan, OrphanCause, Secret, Toolbox, utcnow
from console.workspace import Workspace

if TYPE_CHECKING:  # requests and python-digitalocean: only what talks to the API loads them
    from console.remote.droplets import DropletApi, DropletInfo, Leftover

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
GONE_AFTER = 600.0
"""Seconds after which a recorded orphan the API answers 404 for is taken as deleted
elsewhere (sooner, the 404 may only mean the API does not show a new droplet yet)."""
DESTROY_HINT = "'tbx toolbox destroy-orphan {id}' tries again"


def _quiet(_line: str) -> None:
    pass


def home_id(ws: Workspace) -> str:
    """This installation's part of the ``tbx-home-`` tag: the start of its vault's id."""
    return ws.vault.header.vault_id[:12]


def orphans(ws: Workspace) -> list[Orphan]:
    return sorted(ws.repos.orphans, key=lambda o: (o.found, o.droplet_id))


def describe(orphan: Orphan) -> str:
    """``tbx-cloud (412345678, fra1, $6.00/month)``."""
    price = f", ${orphan.price_monthly:.2f}/month" if orphan.price_monthly is not None else ""
    return f"{orphan.name} ({orphan.droplet_id}, {orphan.region or '?'}{price})"


def monthly(found: list[Orphan]) -> float:
    return sum(o.price_monthly or 0.0 for o in found)


def _audit_detail(orphan: Orphan) -> dict[str, object]:
    return {"name": orphan.name, "region": orphan.region, "size": orphan.size, "price_monthly": orphan.price_monthly,
            "cause": orphan.cause.value, "toolbox": orphan.toolbox}


# -- the keeper a failed add hands its droplet to ------------------------------------------

class VaultKeeper:
    """Keeps the droplet of a failed add in the vault (``console.remote.droplets.Keeper``):
    first silently, then as an orphan (audited) if it could not be deleted, or not at all."""

    def __init__(self, ws: Workspace, toolbox: Toolbox, price: float | None, private_key: str) -> None:
        self.ws, self.toolbox, self.price = ws, toolbox, price
        self._private_key = private_key

    def keep(self, leftover: Leftover) -> None:
        secret = Secret(name=f"orphan/{leftover.droplet_id}/ssh-key", value=self._private_key)
        orphan = Orphan(droplet_id=leftover.droplet_id, name=leftover.name, region=leftover.region, size=leftover.size,
                        price_monthly=self.price, cause=OrphanCause.FAILED_ADD, toolbox_id=self.toolbox.id,
                        toolbox=self.toolbox.name, droplet_key=leftover.key, ssh_key=secret.id)
        with self.ws.change() as change:
            _forget(change.repos, leftover.droplet_id)
            change.repos.secrets.put(secret)
            change.repos.orphans.put(orphan)

    def settle(self, leftover: Leftover, destroyed: bool, error: str) -> None:
        with self.ws.change() as change:
            orphan = change.repos.orphans.get(str(leftover.droplet_id))
            if orphan is None:
                return
            if destroyed:
                _forget(change.repos, leftover.droplet_id)
                return
            orphan.error = error
            change.repos.orphans.put(orphan)
            change.record("droplet.orphan", f"droplet:{orphan.droplet_id}",
                          detail={**_audit_detail(orphan), "why": error})


def _forget(repos, droplet_id: int) -> Orphan | None:  # noqa: ANN001 - Repos
    """Delete the orphan record of ``droplet_id`` and its key, inside a change."""
    orphan = repos.orphans.get(str(droplet_id))
    if orphan is not None:
        repos.orphans.delete([str(droplet_id)])
        if orphan.ssh_key:
            repos.secrets.delete([orphan.ssh_key])
    return orphan


def forget_in(repos, droplet_id: int | None) -> Orphan | None:  # noqa: ANN001 - Repos
    """A toolbox now owns ``droplet_id`` (added, adopted): its orphan record goes, inside that change."""
    return _forget(repos, droplet_id) if droplet_id is not None else None


# -- adds in progress ---------------------------------------------------------------------

def _notes(ws: Workspace) -> Path:
    return ws.paths.state_dir / "remote" / "creating"


@contextmanager
def creating(ws: Workspace, droplet_name: str, toolbox: Toolbox) -> Iterator[None]:
    """While an add runs: a note saying so, so a scan elsewhere leaves its droplet alone,
    and a scan after a crash knows the droplet's name."""
    folder = _notes(ws)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    note = folder / f"{droplet_name}.json"
    note.write_text(json.dumps({"name": droplet_name, "toolbox": toolbox.name, "toolbox_id": toolbox.id,
                                "pid": os.getpid(), "started": time.time()}))
    try:
        yield
    finally:
        note.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _in_flight(ws: Workspace) -> tuple[set[str], list[dict]]:
    """Names of droplets being created now, and the notes of adds that never finished."""
    live: set[str] = set()
    dead: list[dict] = []
    for path in sorted(_notes(ws).glob("*.json")) if _notes(ws).is_dir() else []:
        try:
            note = {**json.loads(path.read_text()), "path": str(path)}
        except (OSError, ValueError):
            continue
        if _alive(int(note.get("pid", 0))):
            live.add(note["name"])
        else:
            dead.append(note)
    return live, dead


# -- the scan -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Scan:
    orphans: list[Orphan]
    """Every orphan the vault holds after the scan."""
    found: list[Orphan] = field(default_factory=list)
    """Recorded by this scan."""
    elsewhere: list[DropletInfo] = field(default_factory=list)
    """Tagged by another installation: listed, never touched."""


def scan(ws: Workspace, api: DropletApi) -> Scan:
    """Ask DigitalOcean for droplets tagged ``tbx`` (and, for adds that never finished, by
    name) that no toolbox owns; record the new ones, forget recorded ones deleted elsewhere."""
    from console.remote.droplets import HOME_TAG, TOOLBOX_TAG, ResourceGone

    live, dead = _in_flight(ws)
    seen = {d.id: d for d in api.ours()}
    for note in dead:
        seen.update({d.id: d for d in api.named(note["name"]) if d.tagged(TOOLBOX_TAG) in (None, note["toolbox_id"])})
    owned = {t.droplet_id for t in ws.repos.toolboxes if t.droplet_id is not None}
    recorded = {o.droplet_id: o for o in ws.repos.orphans}
    mine = home_id(ws)
    found: list[Orphan] = []
    elsewhere: list[DropletInfo] = []
    for droplet in seen.values():
        if droplet.id in owned or droplet.id in recorded or droplet.name in live:
            continue
        if droplet.tagged(HOME_TAG) not in (None, mine):
            elsewhere.append(droplet)
            continue
        note = next((n for n in dead if n["name"] == droplet.name), {})
        found.append(Orphan(droplet_id=droplet.id, name=droplet.name, region=droplet.region, size=droplet.size,
                            price_monthly=droplet.price_monthly, cause=OrphanCause.FOUND,
                            toolbox_id=droplet.tagged(TOOLBOX_TAG), toolbox=note.get("toolbox")))
    gone: list[Orphan] = []
    for orphan in recorded.values():
        if orphan.droplet_id in seen or (utcnow() - orphan.found).total_seconds() < GONE_AFTER:
            continue
        with suppress(ResourceGone):
            api.droplet(orphan.droplet_id)
            continue
        gone.append(orphan)
    if found or gone:
        with ws.change() as change:
            for orphan in found:
                change.repos.orphans.put(orphan)
                change.record("droplet.orphan", f"droplet:{orphan.droplet_id}",
                              detail={**_audit_detail(orphan), "why": "tagged tbx, owned by no toolbox"})
            for orphan in gone:
                _forget(change.repos, orphan.droplet_id)
                change.record("droplet.gone", f"droplet:{orphan.droplet_id}",
                              detail={**_audit_detail(orphan), "why": "deleted outside tbx"})
    for note in dead:
        Path(note["path"]).unlink(missing_ok=True)
    return Scan(orphans(ws), found, sorted(elsewhere, key=lambda d: d.id))


def look(ws: Workspace, request_timeout: float = 10.0) -> list[Orphan]:
    """At start: the orphans, after a scan when tbx has a DigitalOcean token (it made
    droplets); an API that does not answer leaves the recorded ones."""
    from console.services.remote_toolboxes import api_token, droplet_api

    if api_token(ws) is None:
        return orphans(ws)
    try:
        return scan(ws, droplet_api(ws, request_timeout=request_timeout, rate_limit_wait=5)).orphans
    except TbxError as exc:
        log.warning("could not look for droplets no toolbox owns: %s", exc)
        return orphans(ws)


def offer(found: list[Orphan]) -> str:
    """What the console says at start about ``found`` ('' for none)."""
    if not found:
        return ""
    what = describe(found[0]) if len(found) == 1 else f"{len(found)} droplets (${monthly(found):.2f}/month)"
    return (f"{what}: billed, and no toolbox owns it. Toolboxes lists it in red: enter adopts it as a toolbox, "
            "d destroys it")


# -- destroying ---------------------------------------------------------------------------

def destroy_orphan(ws: Workspace, droplet_id: int, progress: Progress | None = None, *,
                   api: DropletApi | None = None, budget: float = 180.0, poll: float = 1.0) -> Orphan:
    """Delete an orphaned droplet (and its SSH key), retrying while it is busy, and forget it."""
    from console.remote.droplets import DigitalOceanError
    from console.services.remote_toolboxes import droplet_api

    orphan = require(ws, droplet_id)
    progress = progress or _quiet
    api = api or droplet_api(ws)
    progress(f"destroying droplet {describe(orphan)}")
    try:
        api.destroy(orphan.droplet_id, orphan.droplet_key, budget=budget, poll=poll, progress=progress)
    except DigitalOceanError as exc:
        with ws.change() as change:
            kept = change.repos.orphans.get(str(droplet_id))
            if kept is not None:
                kept.error = str(exc)
                change.repos.orphans.put(kept)
        raise exc.again(f"{exc}; {DESTROY_HINT.format(id=droplet_id)}") from exc
    with ws.change() as change:
        _forget(change.repos, droplet_id)
        change.record("droplet.destroy", f"droplet:{droplet_id}", detail=_audit_detail(orphan))
    return orphan


def require(ws: Workspace, droplet_id: int) -> Orphan:
    orphan = ws.repos.orphans.get(str(droplet_id))
    if orphan is None:
        raise NotFound(f"no orphaned droplet {droplet_id}; 'tbx toolbox orphans' lists them")
    return orphan


def still_there(error: BaseException, left: str) -> TbxError:
    """``error`` saying also that its droplet is still there and kept."""
    from console.remote.droplets import KEPT, DigitalOceanError

    message = f"{error}; {left}; {KEPT}"
    return error.again(message) if isinstance(error, DigitalOceanError) else TbxError(message)
