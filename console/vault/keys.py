"""Where the key that wraps the vault's data key comes from.

Three sources: a random key kept in the OS keyring; a passphrase stretched with
Argon2id (the passphrase may come from ``TBX_PASSPHRASE`` for non-interactive use); or a
random secret a machine made (a remote toolbox's gateway secret, which keys that
toolbox's policy vault), expanded with HKDF-SHA256: stretching a 256-bit random secret
adds nothing but ~0.1 s per vault. A person's passphrase never takes the HKDF path.
A keyring that cannot really keep a secret (the fail, null and plaintext backends) does
not count as a keyring: the user is asked for a passphrase instead of getting a vault
whose key sits in clear next to it. Every keyring call runs with a time limit, because
a Secret Service that never answers would otherwise freeze the console.
"""

from __future__ import annotations

import base64
import contextlib
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from console.errors import KeyringUnavailable, VaultCorrupt

KEYRING_SERVICE = "toolbox-console"
PASSPHRASE_ENV = "TBX_PASSPHRASE"

ARGON2_MEMORY_KIB = 64 * 1024
ARGON2_ITERATIONS = 3
ARGON2_LANES = 4
MIN_ARGON2_MEMORY_KIB = 64 * 1024
"""A vault asking for less (a tampered header) is refused rather than brute-forced cheaply."""
MACHINE_KDF = "hkdf-sha256"
MIN_MACHINE_SECRET_CHARS = 32
"""``secrets.token_urlsafe(32)`` (the gateway secret) gives 43."""
_HKDF_INFO = b"tbx-vault key-encryption key"

_UNUSABLE_BACKENDS = {
    ("keyring.backends.fail", "Keyring"),
    ("keyring.backends.null", "Keyring"),
    ("keyrings.alt.file", "PlaintextKeyring"),
}

T = TypeVar("T")


def call_with_timeout(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run ``fn`` in a daemon thread; give up after ``timeout`` seconds.

    A hung keyring call cannot be cancelled, only abandoned: the daemon thread does not
    keep the process alive.
    """
    results: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def run() -> None:
        try:
            results.put((True, fn()))
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            results.put((False, exc))

    threading.Thread(target=run, name=f"keyring:{what}", daemon=True).start()
    try:
        ok, value = results.get(timeout=timeout)
    except queue.Empty:
        raise KeyringUnavailable(
            f"the OS keyring did not answer within {timeout:g}s ({what}); unlock it, or use a "
            f"passphrase (set {PASSPHRASE_ENV} or run 'tbx init --passphrase')"
        ) from None
    if ok:
        return value
    raise value


@dataclass(frozen=True)
class KeyringStatus:
    usable: bool
    backend: str
    reason: str


def _backends(kr: Any) -> list[Any]:
    return list(getattr(kr, "backends", None) or [kr])


def keyring_status(timeout: float) -> KeyringStatus:
    import keyring

    try:
        kr = call_with_timeout(keyring.get_keyring, timeout, "find backend")
    except KeyringUnavailable as exc:
        return KeyringStatus(False, "unknown", str(exc))
    name = f"{type(kr).__module__}.{type(kr).__name__}"
    usable = [
        b for b in _backends(kr) if (type(b).__module__, type(b).__name__) not in _UNUSABLE_BACKENDS
    ]
    if not usable:
        return KeyringStatus(False, name, "no keyring backend that can keep a secret is available")
    return KeyringStatus(True, name, "ok")


class KeyringKeys:
    """The vault's key-encryption key, kept in the OS keyring under the vault's id."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def params(self, vault_id: str) -> dict[str, Any]:
        return {"name": "keyring", "service": KEYRING_SERVICE, "account": f"vault-{vault_id}"}

    def create(self, vault_id: str) -> tuple[bytes, dict[str, Any]]:
        import keyring

        status = keyring_status(self.timeout)
        if not status.usable:
            raise KeyringUnavailable(
                f"the OS keyring is not usable ({status.reason}); use a passphrase instead "
                f"(set {PASSPHRASE_ENV} or run 'tbx init --passphrase')"
            )
        kek = os.urandom(32)
        params = self.params(vault_id)
        encoded = base64.b64encode(kek).decode("ascii")
        call_with_timeout(
            lambda: keyring.set_password(params["service"], params["account"], encoded),
            self.timeout,
            "store key",
        )
        return kek, params

    def load(self, params: dict[str, Any]) -> bytes:
        import keyring

        stored = call_with_timeout(
            lambda: keyring.get_password(params["service"], params["account"]),
            self.timeout,
            "read key",
        )
        if stored is None:
            raise KeyringUnavailable(
                f"the OS keyring has no key for this vault (entry {params['service']}/"
                f"{params['account']}); run tbx where that keyring is, or restore the entry"
            )
        return base64.b64decode(stored)

    def forget(self, params: dict[str, Any]) -> None:
        import keyring

        # A leftover keyring entry is harmless; failing to delete it is not an error.
        with contextlib.suppress(Exception):
            call_with_timeout(
                lambda: keyring.delete_password(params["service"], params["account"]),
                self.timeout,
                "delete key",
            )


_DERIVING = threading.Lock()


def passphrase_params() -> dict[str, Any]:
    return {
        "name": "argon2id",
        "salt": base64.b64encode(os.urandom(16)).decode("ascii"),
        "memory_kib": ARGON2_MEMORY_KIB,
        "iterations": ARGON2_ITERATIONS,
        "lanes": ARGON2_LANES,
    }


def derive_from_passphrase(passphrase: str, params: dict[str, Any]) -> bytes:
    try:
        memory = int(params["memory_kib"])
        iterations = int(params["iterations"])
        lanes = int(params["lanes"])
        salt = base64.b64decode(params["salt"])
    except (KeyError, TypeError, ValueError):
        raise VaultCorrupt("the vault header's passphrase parameters are unreadable") from None
    if memory < MIN_ARGON2_MEMORY_KIB or iterations < 1 or len(salt) < 16:
        raise VaultCorrupt(
            "the vault header asks for weaker passphrase stretching than allowed; "
            "it was altered — restore it from a backup"
        )
    kdf = Argon2id(salt=salt, length=32, iterations=iterations, lanes=lanes, memory_cost=memory)
    # Two derivations at once in one process were seen to hang for good inside the
    # library (console workers opening two remote toolboxes' policy vaults together);
    # one at a time costs nothing that matters at ~0.1 s each.
    with _DERIVING:
        return kdf.derive(passphrase.encode("utf-8"))


@dataclass(frozen=True)
class MachineSecret:
    """A vault key given explicitly: a random secret a machine generated (a remote
    toolbox's gateway secret). It is used as given: ``TBX_PASSPHRASE`` and the passphrase
    prompt never replace it, and it is expanded with HKDF, not stretched with Argon2id."""

    value: str = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.value) < MIN_MACHINE_SECRET_CHARS:
            # Only a secret nobody chose may skip the stretching: a short one is a passphrase.
            raise ValueError(
                f"a machine secret has at least {MIN_MACHINE_SECRET_CHARS} random characters; "
                "a passphrase goes through KeySource(passphrase=...)"
            )


def machine_params() -> dict[str, Any]:
    return {"name": MACHINE_KDF, "salt": base64.b64encode(os.urandom(16)).decode("ascii")}


def derive_from_machine_secret(secret: MachineSecret, params: dict[str, Any]) -> bytes:
    """Microseconds: no stretching (the secret is 256 random bits, not a guessable word)."""
    try:
        salt = base64.b64decode(params["salt"])
    except (KeyError, TypeError, ValueError):
        raise VaultCorrupt("the vault header's key parameters are unreadable") from None
    if params.get("name") != MACHINE_KDF or len(salt) < 16:
        raise VaultCorrupt(
            "the vault header's key parameters are not valid; it was altered — restore it from a backup"
        )
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO)
    return kdf.derive(secret.value.encode("utf-8"))
