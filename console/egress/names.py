"""Host names and authorities as the egress allow-list and the proxy see them.

One canonical spelling per host, so a rule and a request target compare as strings:
lower case, IDNA-encoded, no trailing dot, IPv4 as four decimal numbers, IPv6 compressed.
Spellings that a resolver reads as an address but a person reads as a name
(``2130706433``, ``0x7f.1``, ``127.1``) are refused outright: they exist to slip past
a list, never to be written in one. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
import socket

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_PORT = re.compile(r"[0-9]{1,5}")
_MAX_NAME = 253


def canonical_host(text: str) -> str:
    """The canonical spelling of a host name or address literal; ValueError says why not."""
    if text.startswith("[") and text.endswith("]"):
        return _ipv6(text[1:-1])
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        pass
    if ":" in text:
        raise ValueError("has a colon: write IPv6 addresses in brackets, [::1]:443")
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise ValueError("contains whitespace or control characters")
    name = text[:-1] if text.endswith(".") else text
    if not name:
        raise ValueError("is empty")
    try:
        name = name.lower().encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValueError("is not a valid international host name") from None
    labels = name.split(".")
    if len(name) > _MAX_NAME or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError("is not a host name (letters, digits, '-' and dots only)")
    if labels[-1].isdigit() or _inet_aton(name):
        raise ValueError("is a numeric address trick: write IPv4 as four decimal numbers")
    return name


def split_authority(text: str) -> tuple[str, int | None]:
    """``HOST``, ``HOST:PORT`` or ``[IPv6]:PORT`` into the host as written and the port."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError("has an unclosed '['")
        host, rest = text[: close + 1], text[close + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError("has text after ']' that is not ':PORT'")
        port_text = rest[1:] if rest else None
    else:
        if text.count(":") > 1:
            raise ValueError("has several colons: write IPv6 addresses in brackets, [::1]:443")
        host, colon, after = text.partition(":")
        port_text = after if colon else None
    return host, None if port_text is None else _port(port_text)


def authority(host: str, port: int) -> str:
    """``host:port`` with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_address(host: str) -> bool:
    """Whether a canonical host is an IP address literal rather than a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _ipv6(text: str) -> str:
    if "%" in text:
        raise ValueError("has an IPv6 zone id: not allowed")
    try:
        return ipaddress.IPv6Address(text).compressed
    except ValueError:
        raise ValueError("is not an IPv6 address") from None


def _port(text: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise ValueError("has a port outside 1..65535")
    return int(text)


def _inet_aton(name: str) -> bool:
    # The C resolver reads 'inet_aton' forms (0x7f000001, 0177.1) as addresses too.
    try:
        socket.inet_aton(name)
    except OSError:
        return False
    return True
