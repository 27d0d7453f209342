"""Which key opens a vault: the key-encryption key from the OS keyring, a passphrase
(``TBX_PASSPHRASE`` first, then the prompt) or a machine secret, and the machine slot a
policy mirror carries beside its Argon2id key."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from console.errors import VaultCorrupt, VaultLocked, WrongPassphrase
from console.vault import fileformat as ff
from console.vault.keys import (
    MACHINE_KDF,
    MIN_MACHINE_SECRET_CHARS,
    PASSPHRASE_ENV,
    KeyringKeys,
    MachineSecret,
    derive_from_machine_secret,
    derive_from_passphrase,
    machine_params,
    passphrase_params,
)

if TYPE_CHECKING:
    from console.vault.store import KeySource

PassphraseProvider = Callable[[str], str]
"""Asked for the passphrase with a one-line reason; returns it or raises VaultLocked."""

MACHINE_SLOT = "machine_key"
"""Header field of a policy mirror made before machine secrets had their own KDF: the data
key wrapped a second time, under the gateway secret through HKDF (``{"kdf": ...,
"wrapped_key": ...}``). Its ``kdf`` stays Argon2id, so a toolbox gateway deployed before
(older code, which reads only ``kdf`` and keeps unknown fields when it writes) still
opens the pushed file, while this code opens it through the slot, without Argon2id."""

KEY_SOURCES = {
    "keyring": "OS keyring",
    "argon2id": "passphrase (Argon2id)",
    MACHINE_KDF: "machine secret (HKDF-SHA256)",
}


def new_kek(
    source: KeySource | MachineSecret, vault_id: str, keyring_timeout: float
) -> tuple[bytes, dict[str, Any]]:
    if isinstance(source, MachineSecret):
        params = machine_params()
        return derive_from_machine_secret(source, params), params
    if source.passphrase is None:
        return KeyringKeys(keyring_timeout).create(vault_id)
    params = passphrase_params()
    return derive_from_passphrase(source.passphrase, params), params


def machine_slot(header: ff.Header, path: Path) -> tuple[dict[str, Any], bytes] | None:
    """The header's machine slot (``MACHINE_SLOT``): its key parameters and wrapped key."""
    raw = header.extra.get(MACHINE_SLOT)
    if raw is None:
        return None
    try:
        return dict(raw["kdf"]), ff.b64d(raw["wrapped_key"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise VaultCorrupt(f"vault {path} has an unreadable second key in its header; it was altered") from None


def wrapped_for(header: ff.Header, kdf: dict[str, Any], path: Path) -> bytes | None:
    """The data key as wrapped by the key ``kdf`` gives, if ``header`` still has that key."""
    if header.kdf == kdf:
        return header.wrapped_key
    slot = machine_slot(header, path)
    return slot[1] if slot is not None and slot[0] == kdf else None


class Kek(NamedTuple):
    key: bytes
    kdf: dict[str, Any]
    """The key parameters it comes from: the header's ``kdf``, or its machine slot's."""
    wrapped: bytes
    """The data key as that header wrapped it under ``key``."""


def load_kek(
    header: ff.Header, path: Path, given: PassphraseProvider | MachineSecret | None, keyring_timeout: float
) -> Kek:
    if isinstance(given, MachineSecret):
        return _machine_kek(header, path, given)
    name = header.kdf.get("name")
    if name == "keyring":
        return Kek(KeyringKeys(keyring_timeout).load(header.kdf), header.kdf, header.wrapped_key)
    env = os.environ.get(PASSPHRASE_ENV)
    if name == MACHINE_KDF or (env is not None and machine_slot(header, path) is not None):
        # A toolbox's own gateway in its container: the secret comes in TBX_PASSPHRASE
        # (console/remote/deploy.py). It is never typed at a prompt.
        if env is None:
            raise VaultLocked(
                f"vault {path} is locked by a machine secret (a remote toolbox's gateway key): "
                f"open it through its toolbox, or set {PASSPHRASE_ENV} to that secret"
            )
        if len(env) < MIN_MACHINE_SECRET_CHARS:
            raise WrongPassphrase(f"{PASSPHRASE_ENV} does not open vault {path}: it is locked by a machine secret")
        return _machine_kek(header, path, MachineSecret(env))
    if name == "argon2id":
        if env is None:
            if given is None:
                raise VaultLocked(
                    f"vault {path} is locked by a passphrase: set {PASSPHRASE_ENV} "
                    f"or run tbx in a terminal to be asked for it"
                )
            env = given(f"Passphrase for vault {path}")
        return Kek(derive_from_passphrase(env, header.kdf), header.kdf, header.wrapped_key)
    raise VaultCorrupt(f"vault {path} names an unknown key source {name!r}; it was altered")


def _machine_kek(header: ff.Header, path: Path, secret: MachineSecret) -> Kek:
    name = header.kdf.get("name")
    if name == MACHINE_KDF:
        return Kek(derive_from_machine_secret(secret, header.kdf), header.kdf, header.wrapped_key)
    slot = machine_slot(header, path)
    if slot is not None:
        return Kek(derive_from_machine_secret(secret, slot[0]), *slot)
    if name == "argon2id":  # a mirror from before machine secrets had their own KDF
        return Kek(derive_from_passphrase(secret.value, header.kdf), header.kdf, header.wrapped_key)
    raise VaultLocked(
        f"vault {path} is not locked by a machine secret (its key: {KEY_SOURCES.get(str(name), name)}); "
        "open it as a user's vault"
    )


def unwrap(kek: bytes, wrapped: bytes, path: Path, given: PassphraseProvider | MachineSecret | None) -> bytes:
    try:
        return ff.unwrap_key(kek, wrapped, path)
    except WrongPassphrase:
        if isinstance(given, MachineSecret):
            raise WrongPassphrase(
                f"the secret given does not open vault {path} (nothing was changed): it is another vault's key"
            ) from None
        raise
