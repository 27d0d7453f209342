"""Where a name leads, and whether the proxy may go there.

Names resolve here, at the proxy, once: the address that is checked is the address that
is connected to, so a name whose answer changes between a check and a connect (DNS
rebinding) gets nowhere the check did not see. A name that leads into the host's own
networks (loopback, private, link-local, multicast, reserved) is refused unless the user
named the address itself or allowed private addresses for the server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``; raises OSError when the name does not resolve."""

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's resolver, without blocking the event loop; addresses in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_private(address: str) -> bool:
    """Whether ``address`` is anything but a public unicast address (unparseable counts)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and is_private(str(embedded)):
            return True
    return ip.is_multicast or not ip.is_global
