"""The encrypted local vault: one file, a TinyDB inside AES-256-GCM."""

from console.vault.keys import MachineSecret
from console.vault.repos import Repos
from console.vault.store import KeySource, PassphraseProvider, Vault, VaultDB

__all__ = ["KeySource", "MachineSecret", "PassphraseProvider", "Repos", "Vault", "VaultDB"]
