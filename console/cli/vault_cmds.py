"""``tbx init`` and ``tbx vault ...``: create, re-key, rotate, restore the vault."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from console.cli.base import CliState, ask_new_passphrase, emit_json, interactive, json_option, pass_state
from console.config import load_settings
from console.errors import KeyringUnavailable, UsageError, VaultCorrupt, VaultMissing
from console.vault import KeySource, Vault
from console.vault.fileformat import split
from console.vault.keys import PASSPHRASE_ENV, keyring_status
from console.vault.store import restore_backup
from console.workspace import Workspace

NEW_PASSPHRASE_ENV = "TBX_NEW_PASSPHRASE"


def _choose_source(state: CliState, force_passphrase: bool, force_keyring: bool, env: str) -> KeySource:
    if force_keyring:
        return KeySource(passphrase=None)
    given = os.environ.get(env)
    if given is not None:
        return KeySource(passphrase=given)
    if not force_passphrase:
        status = keyring_status(load_settings(state.paths.config_file).vault.keyring_timeout)
        if status.usable:
            return KeySource(passphrase=None)
        if not interactive():
            raise KeyringUnavailable(
                f"no usable OS keyring here ({status.reason}) and no terminal to ask for a "
                f"passphrase on: set {env}"
            )
        click.echo(f"No usable OS keyring ({status.reason}); the vault will be locked by a passphrase.", err=True)
    return KeySource(passphrase=ask_new_passphrase())


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option("--passphrase", "use_passphrase", is_flag=True, help="Lock the vault with a passphrase even if a keyring exists.")
    @pass_state
    def init(state: CliState, use_passphrase: bool) -> None:
        """Create the encrypted vault."""
        source = _choose_source(state, use_passphrase, False, PASSPHRASE_ENV)
        ws = Workspace.create(state.paths, source)
        click.echo(f"created vault {ws.paths.vault} (key: {ws.vault.key_source})")
        click.echo("next: 'tbx toolbox add local --local', then 'tbx agent add NAME'")

    @cli.group()
    def vault() -> None:
        """Manage the vault's keys and backups."""

    @vault.command()
    @click.option("--keyring", "to_keyring", is_flag=True, help="Keep the key in the OS keyring from now on.")
    @click.option("--passphrase", "to_passphrase", is_flag=True, help="Lock with a passphrase from now on.")
    @pass_state
    def passwd(state: CliState, to_keyring: bool, to_passphrase: bool) -> None:
        """Change the passphrase (or key source); the data key is re-wrapped, not changed.

        The new passphrase comes from TBX_NEW_PASSPHRASE or a prompt.
        """
        if to_keyring and to_passphrase:
            raise click.UsageError("choose one of --keyring and --passphrase")
        ws = state.workspace()
        keep_keyring = ws.vault.header.kdf.get("name") == "keyring" and not to_passphrase
        source = _choose_source(state, True, to_keyring or keep_keyring, NEW_PASSPHRASE_ENV)
        ws.vault.change_key_source(source)
        with ws.change() as change:
            change.record("vault.passwd", str(ws.paths.vault), detail={"key_source": ws.vault.key_source})
        click.echo(f"vault key re-wrapped (key: {ws.vault.key_source})")

    @vault.command()
    @pass_state
    def rotate(state: CliState) -> None:
        """Re-encrypt the vault under a fresh data key."""
        ws = state.workspace()
        old = ws.vault.header.key_id
        ws.vault.rotate_data_key()
        with ws.change() as change:
            change.record("vault.rotate", str(ws.paths.vault), detail={"old_key_id": old, "new_key_id": ws.vault.header.key_id})
        click.echo(f"vault re-encrypted under a new data key ({ws.vault.header.key_id})")

    @vault.command()
    @click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
    @pass_state
    def restore(state: CliState, file: Path | None) -> None:
        """Go back to an older copy of the vault, as a new version, recorded in the audit log.

        FILE is the copy to go back to: by default the backup (vault.tbx.bak), or, when an
        older copy was put in place of the vault by hand, that copy. A damaged vault is
        kept beside it; a readable one becomes the backup.
        """
        click.echo(_restore(state, file))

    @vault.command()
    @json_option
    @pass_state
    def info(state: CliState, as_json: bool) -> None:
        """Show the vault's format, key source and size."""
        ws = state.workspace()
        header = ws.vault.header
        facts = {
            "path": str(ws.paths.vault),
            "format": header.format,
            "key_source": ws.vault.key_source,
            "key_id": header.key_id,
            "generation": header.generation,
            "rollback_anchor": ws.vault.anchor_description(),
            "size_bytes": ws.paths.vault.stat().st_size,
            "backup": str(ws.vault.backup_path) if ws.vault.backup_path.exists() else None,
            "records": {name: len(table) for name, table in sorted(ws.tables().items())},
        }
        if as_json:
            emit_json(facts)
            return
        for key, value in facts.items():
            click.echo(f"{key:<16} {value}")


def _restore(state: CliState, file: Path | None) -> str:
    """``tbx vault restore``: the one way to older contents that the rollback anchor accepts."""
    from console.cli.base import ask_passphrase

    paths = state.paths
    options: dict[str, Any] = {"anchor_dir": paths.state_dir, **load_settings(paths.config_file).vault.timeouts()}
    try:
        current: Vault | None = Vault.open(paths.vault, ask_passphrase, allow_older=True, **options)
    except (VaultCorrupt, VaultMissing):
        current = None
    if file is None:
        file = paths.vault if current is not None and current.rolled_back else paths.vault_backup
    file = file.absolute()
    if current is None:
        kept = restore_backup(paths.vault, ask_passphrase, source=file, **options)
        ws = state.workspace()
        restored, written = split(file.read_bytes(), file)[1].generation, ws.vault.header.generation
        with ws.change() as change:
            change.record("vault.restore", str(paths.vault), detail={
                "source": str(file), "from_generation": restored, "to_generation": written,
                "damaged_copy": str(kept) if kept else None})
        return (f"restored {paths.vault} from {file} (generation {restored}) as generation {written}"
                + (f"; the damaged file is kept as {kept}" if kept else ""))
    if not file.exists():
        raise VaultMissing(f"there is no backup at {file} to restore")
    if file == paths.vault.absolute():
        source = current
    else:
        source = Vault.open(file, ask_passphrase, allow_older=True, **options)
    if source.header.vault_id != current.header.vault_id:
        raise UsageError(f"{file} is a copy of another vault, not of {paths.vault}; nothing was changed")
    if source is current and not current.rolled_back:
        return f"{paths.vault} is already the newest version (generation {current.header.generation}); nothing changed"
    return _restore_contents(state, current, source)


def _restore_contents(state: CliState, current: Vault, source: Vault) -> str:
    """Write ``source``'s tables into the readable vault as its next generation, audited."""
    ws = Workspace(state.paths, load_settings(state.paths.config_file), current)
    # The command's workspace from now on, so the restored policy reaches remote toolboxes.
    state.use(ws)
    with ws.change() as change:
        replaced = current.header.generation
        tables = source.db.storage.read()
        # The policy comes back; the bookkeeping of the audit log and of remote pulls
        # (the meta table) stays current, so the log's checkpoint never moves back.
        current.replace_contents({**tables, "meta": {**tables.get("meta", {}), **ws.tables().get("meta", {})}})
        written = current.next_generation
        change.record("vault.restore", str(state.paths.vault), detail={
            "source": str(source.path.absolute()), "from_generation": source.header.generation,
            "to_generation": written, "replaced_generation": replaced})
    if source is current:
        return (f"kept the older copy at {current.path} (generation {replaced}; this machine had written up to "
                f"{written - 1}) as generation {written}, recorded in the audit log")
    return (f"restored {current.path} from {source.path.absolute()} (generation {source.header.generation}) as "
            f"generation {written}, recorded in the audit log; the version it replaced (generation {replaced}) "
            f"is now the backup {current.backup_path}")
