"""SSH key pairs and fingerprints.

A toolbox reached over SSH gets its own ed25519 client key, generated here and kept in
the vault; only the public line ever leaves it (into the droplet's authorized_keys).
Fingerprints use OpenSSH's ``SHA256:<base64 without padding>`` form so users can compare
them with what ``ssh-keygen -lf`` or a cloud console shows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import asyncssh

from console.errors import UsageError


def generate_keypair(comment: str) -> tuple[str, str]:
    """A new ed25519 key: (OpenSSH private key text, OpenSSH public key line)."""
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    private = key.export_private_key("openssh").decode("ascii")
    public = key.export_public_key("openssh").decode("ascii").strip()
    return private, public


def key_blob(public_key_line: str) -> tuple[str, bytes]:
    """The algorithm name and wire-format blob of an OpenSSH public key line."""
    fields = public_key_line.split()
    if len(fields) < 2:
        raise UsageError("not an OpenSSH public key line: expected '<type> <base64> [comment]'")
    algorithm, encoded = fields[0], fields[1]
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(f"not an OpenSSH public key line: the {algorithm} key data is not base64") from None
    # The blob starts with its own algorithm name (uint32 length + name); a mismatch means
    # the line was assembled from pieces of different keys.
    if len(blob) < 4 or blob[4 : 4 + int.from_bytes(blob[:4], "big")] != algorithm.encode("ascii", "replace"):
        raise UsageError(f"not an OpenSSH public key line: the key data does not match its type {algorithm}")
    return algorithm, blob


def fingerprint(public_key_line: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key line, e.g. ``SHA256:Gc...QMM``."""
    _algorithm, blob = key_blob(public_key_line)
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return f"SHA256:{digest}"


def canonical_public_key(public_key_line: str) -> str:
    """``<type> <base64>`` without the comment: what pins compare and store."""
    algorithm, blob = key_blob(public_key_line)
    return f"{algorithm} {base64.b64encode(blob).decode('ascii')}"
