"""Which hosts a server may reach: the per-server egress allow-list.

Entries are ``HOST``, ``HOST:PORT``, ``*.DOMAIN``, ``*.DOMAIN:PORT``, ``*``, an IPv4
literal or ``[IPv6]:PORT``. An entry without a port allows the web's two ports, 443
and 80, and nothing else: a server that needs another port says so. ``*.example.com``
covers every name below ``example.com`` but not ``example.com`` itself, as in TLS
certificates. Pure: parsing and matching only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from console.egress.names import authority, canonical_host, is_address, split_authority
from console.errors import TbxError

WEB_PORTS = (443, 80)
"""What an entry without a port allows."""

_SYNTAX = "write HOST, HOST:PORT, *.DOMAIN[:PORT], * or [IPv6]:PORT"


class EgressError(TbxError):
    """An egress allow-list entry or setting is wrong; the message says how to write it."""


@dataclass(frozen=True)
class HostRule:
    """One allow-list entry: ``host`` is canonical, ``*.domain`` or ``*``."""

    host: str
    port: int | None = None

    @property
    def literal(self) -> bool:
        """An IP address rule: the user named the address, so a private one is meant."""
        return is_address(self.host)

    def matches(self, host: str, port: int) -> bool:
        """Whether this rule covers canonical ``host`` on ``port``."""
        if port not in ((self.port,) if self.port else WEB_PORTS):
            return False
        if self.host == "*":
            return True
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host

    def __str__(self) -> str:
        if self.port is None:
            return f"[{self.host}]" if ":" in self.host else self.host
        return authority(self.host, self.port)


def parse_rule(text: str) -> HostRule:
    """One entry, canonical; EgressError names the entry and says how to write it."""
    try:
        if "://" in text or "/" in text:
            raise ValueError("is a URL: give the host (and port), not a scheme or path")
        host, port = split_authority(text)
        return HostRule(_rule_host(host), port)
    except ValueError as error:
        shown = repr(text if len(text) <= 80 else text[:80] + "...")
        raise EgressError(f"egress entry {shown} {error} ({_SYNTAX})") from None


def _rule_host(host: str) -> str:
    if host == "*":
        return host
    if host.startswith("*."):
        domain = canonical_host(host[2:])
        if is_address(domain):
            raise ValueError("puts a wildcard before an address")
        return "*." + domain
    if "*" in host:
        raise ValueError("has '*' somewhere other than the first label")
    return canonical_host(host)


def _specificity(rule: HostRule) -> tuple[int, str, int]:
    rank = 2 if rule.host == "*" else 1 if rule.host.startswith("*.") else 0
    return rank, rule.host, rule.port or 0


@dataclass(frozen=True)
class AllowList:
    """The rules, most specific first; empty means the server may reach nothing."""

    rules: tuple[HostRule, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        rules = {parse_rule(entry) for entry in entries}
        return cls(tuple(sorted(rules, key=_specificity)))

    @property
    def entries(self) -> tuple[str, ...]:
        """The canonical entries, sorted, each once."""
        return tuple(sorted(str(rule) for rule in self.rules))

    def allows(self, host: str, port: int) -> HostRule | None:
        """The rule that lets ``host:port`` through, or None."""
        try:
            host = canonical_host(host)
        except ValueError:
            return None
        return next((rule for rule in self.rules if rule.matches(host, port)), None)

    def __str__(self) -> str:
        return ", ".join(self.entries) or "(none)"
