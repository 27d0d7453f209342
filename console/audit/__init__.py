"""The tamper-evident audit log (``log``) and what it records of an event (``record``)."""

from console.audit.log import AuditAnchorError, AuditLog, AuditWriteError
from console.audit.record import (
    CUT,
    GENESIS,
    RECORD_LIMIT,
    REDACTED,
    AuditEvent,
    Checkpoint,
    Verification,
    canonical,
    escape,
    event_body,
    printable,
    printable_text,
    record_mac,
    redact,
    timestamp,
    unrecordable,
)

__all__ = [
    "CUT", "GENESIS", "RECORD_LIMIT", "REDACTED", "AuditAnchorError", "AuditEvent", "AuditLog",
    "AuditWriteError", "Checkpoint", "Verification", "canonical", "escape", "event_body", "printable",
    "printable_text", "record_mac", "redact", "timestamp", "unrecordable",
]
