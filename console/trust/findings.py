"""What a scan's findings ask of an approval: which kinds, in what order.

Apart from ``scan`` because the console's approve dialog needs only this, and ``scan``
compiles its sixty rules on import (40 ms on the key that opens the dialog).
"""

from __future__ import annotations

from console.model import Finding

SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}


def finding_kinds(findings: list[Finding]) -> list[str]:
    """The kinds among ``findings``, in the order of their most severe finding."""
    ranked = sorted(findings, key=lambda f: SEVERITY_RANK[f.severity])
    return list(dict.fromkeys(f.kind for f in ranked))


def blocking_kinds(findings: list[Finding]) -> list[str]:
    """The kinds an approval must accept by name: those of medium and high findings.

    A low finding (a parameter named ``token`` on an account server, a soft hyphen) is
    shown with the item but does not hold it back: asking users to accept what is normal
    in real servers teaches them to accept everything."""
    return finding_kinds([f for f in findings if f.severity != "low"])
