"""Keep secrets out of anything shown or stored: logs, error text, audit previews.

Two nets: the exact values of the secrets we know (the vault's, a server's own), and
the shapes of common credentials, for the ones we do not know.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

TOKEN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b")),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")),
    ("openai-key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b")),
    ("aws-access-key", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b")),
    ("private-key", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
    ("tbx-agent-token", re.compile(r"\btbx_[A-Za-z0-9_-]{40,}\b")),
)
MIN_SECRET_LENGTH = 6
"""Shorter values would match ordinary text everywhere; such secrets are weak anyway."""


class Redactor:
    def __init__(self, secrets: dict[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = secrets.items() if isinstance(secrets, dict) else secrets
        known = {value: name for name, value in pairs if value and len(value) >= MIN_SECRET_LENGTH}
        # Longest first, so a secret containing another is replaced whole.
        self._known = sorted(known.items(), key=lambda kv: -len(kv[0]))
        self._known_re = (
            re.compile("|".join(re.escape(value) for value, _ in self._known)) if self._known else None
        )
        self._names = dict(self._known)

    def findings(self, text: str) -> list[str]:
        """Names of the secrets and kinds of token found in ``text``."""
        found = []
        if self._known_re is not None:
            found += sorted({self._names[m.group(0)] for m in self._known_re.finditer(text)})
        found += [kind for kind, pattern in TOKEN_PATTERNS if pattern.search(text)]
        return found

    def redact(self, text: str) -> str:
        if self._known_re is not None:
            text = self._known_re.sub(lambda m: f"‹secret:{self._names[m.group(0)]}›", text)
        for kind, pattern in TOKEN_PATTERNS:
            text = pattern.sub(f"‹{kind}›", text)
        return text


def argument_digest(arguments: Any, redactor: Redactor, preview_chars: int = 160) -> dict[str, str]:
    """What the audit log keeps of a call's arguments: a hash and a redacted preview."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    preview = redactor.redact(canonical)
    if len(preview) > preview_chars:
        preview = preview[:preview_chars] + "…"
    return {"sha256": hashlib.sha256(canonical.encode("utf-8")).hexdigest(), "preview": preview}
