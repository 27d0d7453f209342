"""``tbx init`` and ``tbx vault ...``: create, re-key, rotate, restore the vault."""

from __future__ import annotations

import os

import click

from console.cli.base import CliState, ask_new_passphrase, emit_json, interactive, json_option, pass_state
from console.config import load_settings
from console.errors import KeyringUnavailable
from console.vault import KeySource
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
    @pass_state
    def restore(state: CliState) -> None:
        """Replace a damaged vault with its backup (the damaged file is kept)."""
        from console.cli.base import ask_passphrase

        settings = load_settings(state.paths.config_file)
        kept = restore_backup(state.paths.vault, ask_passphrase, keyring_timeout=settings.vault.keyring_timeout)
        ws = state.workspace()
        with ws.change() as change:
            change.record("vault.restore", str(ws.paths.vault), detail={"damaged_copy": str(kept) if kept else None})
        click.echo(f"restored {ws.paths.vault} from its backup" + (f"; the damaged file is kept as {kept}" if kept else ""))

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
            "size_bytes": ws.paths.vault.stat().st_size,
            "backup": str(ws.vault.backup_path) if ws.vault.backup_path.exists() else None,
            "records": {name: len(table) for name, table in sorted(ws.tables().items())},
        }
        if as_json:
            emit_json(facts)
            return
        for key, value in facts.items():
            click.echo(f"{key:<11} {value}")
