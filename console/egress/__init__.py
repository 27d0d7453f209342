"""Per-server egress: the allow-list and the proxy that enforces it (no Textual, no Docker)."""

from console.egress.allowlist import AllowList, EgressError, HostRule, parse_rule
from console.egress.proxy import EgressEvent, EgressProxy, EgressStats

__all__ = [
    "AllowList", "EgressError", "EgressEvent", "EgressProxy", "EgressStats", "HostRule", "parse_rule",
]
