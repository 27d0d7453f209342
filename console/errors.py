"""The typed errors of Toolbox Console.

Every error a user can cause carries a message that names what went wrong and what to
do about it, in one line. The CLI prints ``str(error)`` and exits 1; the TUI shows it in
a notification. Anything that is not a ``TbxError`` is a bug and gets a traceback under
``--debug``.
"""

from __future__ import annotations


class TbxError(Exception):
    """Base class: an expected failure whose message tells the user what to do."""

    exit_code = 1


class UsageError(TbxError):
    """The request itself is malformed (bad name, bad duration, bad target)."""

    exit_code = 2


class NotFound(TbxError):
    """A named agent, toolbox, server or tool does not exist."""


class AlreadyExists(TbxError):
    """A name is already taken."""


class VaultError(TbxError):
    """Base class for vault problems."""


class VaultMissing(VaultError):
    """There is no vault yet."""


class VaultLocked(VaultError):
    """The vault's key is not available (no passphrase given, keyring unreachable)."""


class WrongPassphrase(VaultError):
    """The passphrase does not unwrap the data key."""


class VaultCorrupt(VaultError):
    """The vault file is damaged, truncated or was tampered with."""


class VaultTooNew(VaultError):
    """The vault was written by a newer format version than this program reads."""


class VaultRolledBack(VaultError):
    """The vault file is older than the newest version this machine wrote: an old copy
    was put back (by hand, a sync or a backup tool), which can undo a revoke."""


class VaultBusy(VaultError):
    """Another process held the vault lock for too long."""


class KeyringUnavailable(VaultError):
    """The OS keyring is missing, unusable or did not answer in time."""


class AuditError(TbxError):
    """The audit log cannot be written or read."""


class ImageError(TbxError):
    """A server image cannot be pulled, downloaded or built (names the step and the fix)."""
