"""``tbx locate`` and ``tbx doctor``."""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version

import click

from console.cli.base import CliState, emit_json, json_option, pass_state
from console.config import load_settings
from console.errors import TbxError
from console.logsetup import log_file
from console.runtime.engine import probe_engine
from console.vault.keys import PASSPHRASE_ENV, keyring_status
from console.workspace import Workspace


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


def _versions() -> Check:
    found = []
    for package in ("textual", "mcp", "docker", "cryptography", "authlib", "asyncssh"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            return Check("packages", "fail", f"{package} is not installed", "reinstall: make run")
    return Check("packages", "ok", ", ".join(found))


def run_checks(state: CliState) -> list[Check]:
    checks = []
    py = sys.version_info
    checks.append(Check("python", "ok" if py >= (3, 11) else "fail", sys.version.split()[0],
                        "" if py >= (3, 11) else "use Python 3.11 or newer"))
    checks.append(_versions())
    engine = probe_engine()
    checks.append(Check("docker engine", "ok" if engine.reachable else "fail", engine.describe(),
                        "" if engine.reachable else "install docker.io and start dockerd, or set DOCKER_HOST"))
    if engine.reachable:
        checks.append(_networked_servers())
    settings = load_settings(state.paths.config_file)
    keyring = keyring_status(settings.vault.keyring_timeout)
    checks.append(Check("keyring", "ok" if keyring.usable else "warn", f"{keyring.backend}: {keyring.reason}",
                        "" if keyring.usable else "vaults will be locked by a passphrase instead"))
    checks.append(_rollback_check(state, keyring.usable))
    checks.append(_keys_check(settings.tui.keys))
    checks.extend(_vault_checks(state))
    return checks


def _networked_servers() -> Check:
    """Server containers made before egress went through the allow-list proxy are still on
    a network (all of it) until tbx makes them again: say which, and how."""
    from console.runtime.containers import LABEL_NAME, LABEL_SERVER, Engine

    engine = Engine()
    try:
        found = [c.labels.get(LABEL_NAME, c.name) for c in engine.client.containers.list(
            all=True, filters={"label": LABEL_SERVER}) if c.attrs["HostConfig"].get("NetworkMode", "none") != "none"]
    finally:
        engine.close()
    if not found:
        return Check("egress", "ok", "every server container on this engine is on network none")
    return Check("egress", "warn", f"on a network, not behind an allow-list (made by an older tbx): {', '.join(found)}",
                 f"tbx server restart {found[0]} (each of them): its container is made again")


def _keys_check(keys: dict[str, str]) -> Check:
    """A remapped key whose binding id names nothing is ignored by the console: say so."""
    from console.tui.keymap import describe_unknown  # reads sources only: no Textual loaded

    if not keys:
        return Check("keys", "ok", "no keys remapped in [tui.keys]")
    problem = describe_unknown(keys)
    if problem:
        return Check("keys", "warn", problem, "use the binding ids that ? lists in the console")
    return Check("keys", "ok", f"{len(keys)} key(s) remapped in [tui.keys]")


def _rollback_check(state: CliState, keyring_usable: bool) -> Check:
    if keyring_usable:
        return Check("rollback", "ok", "vault generations are anchored in the OS keyring: an older vault put "
                     "back is refused, even by someone who can write all your files")
    return Check("rollback", "warn",
                 f"vault generations are anchored only in a file in {state.paths.state_dir}: an older vault put "
                 "back by accident is refused, but whoever can write your files can put back an old vault and "
                 "that file together", "run tbx where an OS keyring is usable (see the line above)")


def _vault_checks(state: CliState) -> list[Check]:
    paths = state.paths
    if not paths.vault.exists():
        return [Check("vault", "warn", f"no vault at {paths.vault}", "run 'tbx init'")]
    checks = []
    mode = stat.S_IMODE(paths.data_dir.stat().st_mode)
    if mode & 0o077:
        checks.append(Check("data dir", "warn", f"{paths.data_dir} is readable by others ({oct(mode)})",
                            f"chmod 700 {paths.data_dir}"))
    try:
        ws = Workspace.open(paths, None)
    except TbxError as exc:
        locked = "locked by a passphrase" in str(exc) and PASSPHRASE_ENV not in os.environ
        return [*checks, Check("vault", "warn" if locked else "fail", str(exc),
                               f"set {PASSPHRASE_ENV} to let doctor open it" if locked else "")]
    checks.append(Check("vault", "ok", f"{paths.vault}: format {ws.vault.header.format}, key: {ws.vault.key_source}"))
    result = ws.audit.verify(ws.audit_checkpoint)
    checks.append(Check("audit log", "ok" if result.ok else "fail", result.message,
                        "" if result.ok else "run 'tbx audit verify' and keep the log as evidence"))
    checks.append(_droplets_check(ws))
    return checks


def _droplets_check(ws: Workspace) -> Check:
    """Droplets billed that no toolbox owns: those the vault keeps, and, with a DigitalOcean
    token (tbx made droplets), those tagged tbx the API lists."""
    from console.cli.toolbox_views import ORPHAN_HINT
    from console.services import droplet_orphans as orphans
    from console.services.remote_toolboxes import api_token, droplet_api

    found, asked = orphans.orphans(ws), ""
    if api_token(ws) is not None:
        try:
            found = orphans.scan(ws, droplet_api(ws, request_timeout=10, rate_limit_wait=5)).orphans
            asked = " (DigitalOcean asked)"
        except TbxError as exc:
            return Check("droplets", "warn", f"could not ask DigitalOcean for droplets no toolbox owns: {exc}"
                         + (f"; the vault keeps {len(found)}" if found else ""), "run 'tbx toolbox orphans' later")
    if not found:
        return Check("droplets", "ok", f"no droplet tbx made is left without a toolbox{asked}")
    return Check("droplets", "warn", f"{len(found)} droplet(s) billed (${orphans.monthly(found):.2f}/month) that no "
                 f"toolbox owns: {', '.join(orphans.describe(o) for o in found)}", ORPHAN_HINT)


def register(cli: click.Group) -> None:
    @cli.command()
    @json_option
    @pass_state
    def locate(state: CliState, as_json: bool) -> None:
        """Print where data, config and themes live."""
        p = state.paths
        places = {
            "data": p.data_dir, "config": p.config_dir, "themes": p.themes_dir, "state": p.state_dir,
            "vault": p.vault, "audit log": p.audit_log, "settings": p.config_file, "log": log_file(p),
        }
        if as_json:
            emit_json({k.replace(" ", "_"): str(v) for k, v in places.items()})
            return
        for key, value in places.items():
            click.echo(f"{key:<10} {value}")

    @cli.command()
    @json_option
    @pass_state
    def doctor(state: CliState, as_json: bool) -> None:
        """Check the Docker engine, keyring, vault, versions and billed droplets; say what to fix."""
        checks = run_checks(state)
        if as_json:
            emit_json([asdict(c) for c in checks])
        else:
            for c in checks:
                click.echo(f"{c.status:<5} {c.name:<14} {c.detail}")
                if c.fix:
                    click.echo(f"{'':<20} fix: {c.fix}")
        if any(c.status == "fail" for c in checks):
            raise SystemExit(1)
