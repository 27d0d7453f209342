"""The vault file: a clear header line, then the encrypted body.

    {"magic":"tbx-vault","format":1,...,"check":"<sha256>"}\\n<AES-256-GCM ciphertext>

The header names the key source and its parameters, carries the data key wrapped
(RFC 3394 AES key wrap) by the key-encryption key, and the body's nonce. The exact
header bytes are the body's associated data, so a header edit or a body taken from
another vault, or from another version of this one, fails authentication. ``check`` is
a plain SHA-256 of the other header fields: it tells accidental damage of the header
apart from a wrong passphrase, which otherwise look alike (the unwrap fails either way).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from console.errors import VaultCorrupt, VaultTooNew, WrongPassphrase

MAGIC = "tbx-vault"
FORMAT_VERSION = 1


def b64e(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def b64d(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class Header:
    vault_id: str
    """Stable identity of this vault; names its key in the OS keyring."""
    key_id: str
    """Identity of the data key; changes on rotation."""
    generation: int
    kdf: dict[str, Any]
    wrapped_key: bytes
    nonce: bytes
    format: int = FORMAT_VERSION
    writer: str = ""
    """Which machine wrote this version (its rollback anchor's id); empty before anchors."""
    extra: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        return {
            "magic": MAGIC,
            "format": self.format,
            "vault_id": self.vault_id,
            "key_id": self.key_id,
            "generation": self.generation,
            "kdf": self.kdf,
            "wrapped_key": b64e(self.wrapped_key),
            "nonce": b64e(self.nonce),
            **({"writer": self.writer} if self.writer else {}),
            **self.extra,
        }

    def encode(self) -> bytes:
        fields = self.fields()
        fields["check"] = hashlib.sha256(_canonical(fields)).hexdigest()
        return _canonical(fields)

    def next(self, **changes: Any) -> Header:
        """The header of the next write: a fresh nonce and a higher generation."""
        changes.setdefault("generation", self.generation + 1)
        return replace(self, nonce=os.urandom(12), **changes)


def parse_header(line: bytes, path: Path) -> Header:
    damaged = VaultCorrupt(_damaged_message(path, "its header is unreadable"))
    try:
        fields = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        if MAGIC.encode() not in line:
            raise VaultCorrupt(f"{path} is not a Toolbox Console vault (no vault header found)") from None
        raise damaged from None
    if not isinstance(fields, dict) or fields.get("magic") != MAGIC:
        raise VaultCorrupt(f"{path} is not a Toolbox Console vault (no vault header found)")
    version = fields.get("format")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise VaultTooNew(
            f"vault {path} has format {version}, newer than this tbx reads "
            f"(up to {FORMAT_VERSION}): upgrade Toolbox Console to open it"
        )
    check = fields.pop("check", None)
    if check != hashlib.sha256(_canonical(fields)).hexdigest():
        raise damaged
    try:
        known = {"magic", "format", "vault_id", "key_id", "generation", "kdf", "wrapped_key", "nonce", "writer"}
        return Header(
            vault_id=str(fields["vault_id"]),
            key_id=str(fields["key_id"]),
            generation=int(fields["generation"]),
            kdf=dict(fields["kdf"]),
            wrapped_key=b64d(fields["wrapped_key"]),
            nonce=b64d(fields["nonce"]),
            format=int(version),
            writer=str(fields.get("writer", "")),
            extra={k: v for k, v in fields.items() if k not in known},
        )
    except (KeyError, TypeError, ValueError):
        raise damaged from None


def _damaged_message(path: Path, what: str) -> str:
    backup = path.with_name(path.name + ".bak")
    if backup.exists():
        return (
            f"vault {path} is damaged ({what}); nothing was changed. The previous version "
            f"is {backup}: run 'tbx vault restore' to switch to it"
        )
    return f"vault {path} is damaged ({what}); nothing was changed and there is no backup to restore"


def split(blob: bytes, path: Path) -> tuple[bytes, Header, bytes]:
    """Split a vault file into (header line, parsed header, ciphertext)."""
    newline = blob.find(b"\n")
    if newline < 0:
        if blob.startswith(b'{"'):
            raise VaultCorrupt(_damaged_message(path, "it is truncated"))
        raise VaultCorrupt(f"{path} is not a Toolbox Console vault (no vault header found)")
    line = blob[:newline]
    header = parse_header(line, path)
    return line, header, blob[newline + 1 :]


def wrap_key(kek: bytes, data_key: bytes) -> bytes:
    return aes_key_wrap(kek, data_key)


def unwrap_key(kek: bytes, wrapped: bytes, path: Path) -> bytes:
    try:
        return aes_key_unwrap(kek, wrapped)
    except InvalidUnwrap:
        raise WrongPassphrase(
            f"the key does not open vault {path}: wrong passphrase (nothing was changed); "
            f"try again, or set TBX_PASSPHRASE to the right one"
        ) from None


def seal(header: Header, data_key: bytes, plaintext: bytes) -> bytes:
    line = header.encode()
    return line + b"\n" + AESGCM(data_key).encrypt(header.nonce, plaintext, line)


def open_body(line: bytes, header: Header, data_key: bytes, ciphertext: bytes, path: Path) -> bytes:
    try:
        return AESGCM(data_key).decrypt(header.nonce, ciphertext, line)
    except InvalidTag:
        raise VaultCorrupt(
            _damaged_message(path, "its contents fail authentication: truncated, altered or swapped")
        ) from None
