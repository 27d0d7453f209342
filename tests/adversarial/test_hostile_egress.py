"""The egress proxy against the server behind it: a hostile server inside its container
can only write bytes to the proxy's socket, so these tests write raw bytes to it and
check that none of them reach a host the allow-list does not name, that every buffer
and wait is bounded, and that the event stream never carries a path, query or header
value. The "internet" is origins on 127.0.0.x; names resolve from a fixed table.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from console.egress import AllowList
from console.egress.addresses import is_private
from tests.conftest import CANARY
from tests.support.egress_net import Origin, Sink, egress_rig, exchange, status_of, table_resolver


@pytest.fixture
async def allowed() -> AsyncIterator[Origin]:
    server = await Origin("127.0.0.6").start()
    yield server
    await server.close()


@pytest.fixture
async def forbidden() -> AsyncIterator[Origin]:
    server = await Origin("127.0.0.7").start()
    yield server
    await server.close()


@pytest.fixture
async def home() -> AsyncIterator[Origin]:
    """An origin on 127.0.0.1: the host itself, which a server must never reach by a trick."""
    server = await Origin("127.0.0.1").start()
    yield server
    await server.close()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    server = await Sink("127.0.0.6").start()
    yield server
    await server.close()


@pytest.mark.parametrize(
    "head",
    [
        b"\r\n\r\n",
        b"GET\r\n\r\n",
        b"CONNECT\r\n\r\n",
        b"GARBAGE GARBAGE GARBAGE GARBAGE\r\n\r\n",
        b"GET http://127.0.0.6/ HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET http://127.0.0.6/ HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET http://127.0.0.6/ HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(64),
        b"CONNECT 127.0.0.6 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"CONNECT 127.0.0.6: HTTP/1.1\r\nHost: x\r\n\r\n",
        b"CONNECT 127.0.0.6:99999 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"CONNECT 127.0.0.6:-1 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http:// HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://127.0.0.7@127.0.0.6/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://127.0.0.6\\@127.0.0.7/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET https://127.0.0.6/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET ftp://127.0.0.6/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET 127.0.0.6:80 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://%31%32%37.0.0.6/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /upload HTTP/1.1\r\nHost: 127.0.0.6\r\n\r\n",
    ],
)
async def test_malformed_requests_are_refused_before_any_host_is_contacted(
    tmp_path: Path, allowed: Origin, forbidden: Origin, head: bytes
) -> None:
    async with egress_rig(tmp_path, ["127.0.0.6", "*"]) as rig:
        answer = await exchange(rig.socket_path, head)
        assert status_of(answer) in (400, 405)
        assert answer.count(b"\r\n\r\n") == 1 and answer.endswith(b"\n")
        assert rig.events == [] and rig.proxy.stats.malformed == 1
        assert allowed.connections == forbidden.connections == 0
        survivor = f"GET http://127.0.0.6:{allowed.port}/ HTTP/1.1\r\nHost: x\r\n\r\n"
        rig.proxy.update(AllowList.parse([f"127.0.0.6:{allowed.port}"]))
        assert b"hello from 127.0.0.6" in await exchange(rig.socket_path, survivor.encode())


async def test_the_host_header_decides_nothing(tmp_path: Path, allowed: Origin, forbidden: Origin) -> None:
    async with egress_rig(tmp_path, [f"127.0.0.6:{allowed.port}"]) as rig:
        to_allowed = f"GET http://127.0.0.6:{allowed.port}/x HTTP/1.1\r\nHost: 127.0.0.7:{forbidden.port}\r\n\r\n"
        to_forbidden = f"GET http://127.0.0.7:{forbidden.port}/x HTTP/1.1\r\nHost: 127.0.0.6:{allowed.port}\r\n\r\n"
        assert status_of(await exchange(rig.socket_path, to_allowed.encode())) == 200
        assert status_of(await exchange(rig.socket_path, to_forbidden.encode())) == 403
    assert forbidden.connections == 0
    assert [seen.headers["host"] for seen in allowed.seen] == [f"127.0.0.6:{allowed.port}"]
    assert [e.kind for e in rig.events] == ["allowed", "blocked"]


async def test_a_second_request_on_a_connection_only_ever_reaches_the_first_host(
    tmp_path: Path, sink: Sink, allowed: Origin, forbidden: Origin
) -> None:
    smuggled = f"CONNECT 127.0.0.7:{forbidden.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    async with egress_rig(tmp_path, [f"127.0.0.6:{sink.port}", f"127.0.0.6:{allowed.port}"]) as rig:
        first = f"CONNECT 127.0.0.6:{sink.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        reader, writer = await asyncio.open_unix_connection(str(rig.socket_path))
        writer.write(first + smuggled)
        async with asyncio.timeout(5):
            assert status_of(await reader.readuntil(b"\r\n\r\n")) == 200
            assert await reader.readexactly(len(smuggled)) == smuggled  # echoed by the sink
        writer.close()
        get = f"GET http://127.0.0.6:{allowed.port}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        answer = await exchange(rig.socket_path, get.encode() + smuggled)
    assert bytes(sink.received[0]) == smuggled
    assert b"hello from 127.0.0.6" in answer and b"Connection established" not in answer
    assert forbidden.connections == 0
    assert [e.kind for e in rig.events] == ["allowed", "allowed"]


@pytest.mark.parametrize("size", [17 * 1024, 1024 * 1024])
async def test_an_oversized_head_is_431_and_not_held(tmp_path: Path, allowed: Origin, size: int) -> None:
    async with egress_rig(tmp_path, [f"127.0.0.6:{allowed.port}"]) as rig:
        target = f"GET http://127.0.0.6:{allowed.port}/ HTTP/1.1\r\n".encode()
        head = target + b"X-Fill: " + b"a" * size + b"\r\n\r\n"
        reader, writer = await asyncio.open_unix_connection(str(rig.socket_path))
        writer.write(head)  # not drained: a proxy that answers early never reads it all
        async with asyncio.timeout(5):
            try:
                answer = await reader.read(-1)
            except ConnectionResetError:  # closed with the rest unread: what a 1 MB head earns
                answer = b"HTTP/1.1 431 (reset)"
        writer.close()
        fitting = target + b"Host: x\r\nX-Fill: " + b"a" * (15 * 1024) + b"\r\n\r\n"
        assert status_of(await exchange(rig.socket_path, fitting)) == 200
    assert status_of(answer) == 431
    assert len(allowed.seen) == 1


async def test_a_head_that_never_ends_is_dropped(tmp_path: Path, allowed: Origin) -> None:
    async with egress_rig(tmp_path, [f"127.0.0.6:{allowed.port}"], head_timeout=0.5) as rig:
        reader, writer = await asyncio.open_unix_connection(str(rig.socket_path))
        started = time.monotonic()
        async with asyncio.timeout(5):
            for byte in f"GET http://127.0.0.6:{allowed.port}/ HTTP/1.1\r\nX-Drip: ".encode():
                writer.write(bytes([byte]))  # slowloris: always a little more, never the end
                await asyncio.sleep(0.02)
                if reader.at_eof():
                    break
            assert await reader.read(-1) == b""
        writer.close()
    assert time.monotonic() - started < 2
    assert allowed.connections == 0 and rig.proxy.stats.malformed == 1


async def test_two_hundred_idle_connections_cannot_starve_the_proxy(tmp_path: Path, allowed: Origin) -> None:
    async with egress_rig(tmp_path, [f"127.0.0.6:{allowed.port}"], head_timeout=1.0) as rig:
        idle = [await asyncio.open_unix_connection(str(rig.socket_path)) for _ in range(200)]
        async with asyncio.timeout(5):
            answers = await asyncio.gather(*(reader.read(-1) for reader, _ in idle))
        for _, writer in idle:
            writer.close()
        busy = [answer for answer in answers if answer]
        assert len(busy) == 200 - 64 and all(status_of(answer) == 503 for answer in busy)
        assert rig.proxy.stats.busy == 136
        get = f"GET http://127.0.0.6:{allowed.port}/ HTTP/1.1\r\nHost: x\r\n\r\n"
        assert status_of(await exchange(rig.socket_path, get.encode())) == 200


@pytest.mark.parametrize(
    "target",
    [
        b"\xed\xa0\x80.example.com:443",  # a lone surrogate, as UTF-8 would spell it
        b"\xff\xfe.example.com:443",
        b"exa\x00mple.com:443",
        b"example.com\x00.127.0.0.6:443",
        b"exa mple.com:443",
        b"ex\x7fample.com:443",
        "bücher.de:443".encode(),
    ],
)
async def test_bytes_that_are_no_host_name_in_the_target_are_400(tmp_path: Path, target: bytes) -> None:
    resolved: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.6"]

    async with egress_rig(tmp_path, ["*"], resolver=resolver) as rig:
        answer = await exchange(rig.socket_path, b"CONNECT " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(answer) == 400
    assert rig.events == [] and resolved == []


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "255.255.255.255", "192.0.2.1", "240.0.0.1",
        "::1", "::", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe", "fe80::1%1", "fc00::1", "ff02::1", "not an address",
    ],
)
def test_every_address_into_the_hosts_own_networks_counts_as_private(address: str) -> None:
    assert is_private(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_do_not(address: str) -> None:
    assert not is_private(address)


# Only loopback answers go through the proxy: were the check broken, a test must still
# not send anything off this machine.
@pytest.mark.parametrize(
    "answers", [["127.0.0.1"], ["127.0.0.6"], ["0.0.0.0"], ["::1"], ["::ffff:127.0.0.1"], ["127.0.0.6", "::1"]]
)
async def test_a_name_that_leads_home_is_refused_as_private(tmp_path: Path, answers: list[str]) -> None:
    calls: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers

    async with egress_rig(tmp_path, ["rebind.test:8080"], resolver=rebinding) as rig:
        answer = await exchange(rig.socket_path, b"CONNECT rebind.test:8080 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(answer) == 403 and b"private address" in answer
    assert rig.kinds() == [("blocked", "rebind.test", 8080, "private address")]
    assert calls == ["rebind.test"], "resolved once, at the proxy"


async def test_a_rebinding_name_is_connected_at_the_address_that_was_checked(
    tmp_path: Path, allowed: Origin
) -> None:
    answers = iter([["127.0.0.6"], ["127.0.0.7"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    names = f"rebind.test:{allowed.port}"
    async with egress_rig(tmp_path, [names], resolver=rebinding, allow_private=True) as rig:
        get = f"GET http://{names}/ HTTP/1.1\r\nHost: x\r\n\r\n"
        assert b"hello from 127.0.0.6" in await exchange(rig.socket_path, get.encode())
    assert len(allowed.seen) == 1


@pytest.mark.parametrize(
    "target",
    ["[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[0:0:0:0:0:0:0:1]", "127.0.0.1", "0.0.0.0"],
)
async def test_private_address_literals_need_a_literal_rule(tmp_path: Path, home: Origin, target: str) -> None:
    async with egress_rig(tmp_path, [f"*:{home.port}"]) as rig:
        answer = await exchange(rig.socket_path, f"CONNECT {target}:{home.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status_of(answer) == 403 and b"private address" in answer
    assert home.connections == 0


@pytest.mark.parametrize(
    "target",
    ["::1", "::1:443", "[::1", "[::1]x", "[fe80::1%25lo]", "[::1]:0"],
)
async def test_unbracketed_or_broken_ipv6_targets_are_400(tmp_path: Path, target: str) -> None:
    async with egress_rig(tmp_path, ["*", "*:443"]) as rig:
        answer = await exchange(rig.socket_path, f"CONNECT {target}:443 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status_of(answer) == 400 and rig.events == []


@pytest.mark.parametrize(
    "trick",
    ["2130706433", "0x7f.1", "0x7f000001", "0177.0.0.1", "0177.1", "127.1", "127.0.1", "127.0.0.1.", "0x7f.0.0.1"],
)
async def test_numeric_ipv4_tricks_never_reach_the_host(tmp_path: Path, home: Origin, trick: str) -> None:
    no_names = table_resolver({})  # were the check broken, still no query leaves the machine
    async with egress_rig(tmp_path, [f"*:{home.port}", f"127.0.0.1:{home.port}"], resolver=no_names) as rig:
        connect = await exchange(rig.socket_path, f"CONNECT {trick}:{home.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        get = await exchange(rig.socket_path, f"GET http://{trick}:{home.port}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status_of(connect) == status_of(get) == 400
    assert home.connections == 0 and rig.events == []


async def test_a_trailing_dot_names_the_same_host(tmp_path: Path, allowed: Origin) -> None:
    names = table_resolver({"api.example.test": ["127.0.0.6"]})
    entries = [f"api.example.test:{allowed.port}"]
    async with egress_rig(tmp_path, entries, resolver=names, allow_private=True) as rig:
        dotted = f"GET http://API.example.test.:{allowed.port}/ HTTP/1.1\r\nHost: x\r\n\r\n"
        assert status_of(await exchange(rig.socket_path, dotted.encode())) == 200
        rig.proxy.update(AllowList.parse([f"other.example.test:{allowed.port}"]))
        assert status_of(await exchange(rig.socket_path, dotted.encode())) == 403
    assert [(e.kind, e.host) for e in rig.events] == [("allowed", "api.example.test"), ("blocked", "api.example.test")]


async def test_a_content_length_the_server_never_sends_does_not_hold_the_proxy(
    tmp_path: Path, allowed: Origin
) -> None:
    async with egress_rig(tmp_path, [f"127.0.0.6:{allowed.port}"], idle_timeout=30) as rig:
        reader, writer = await asyncio.open_unix_connection(str(rig.socket_path))
        lie = f"POST http://127.0.0.6:{allowed.port}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\nshort"
        writer.write(lie.encode())
        writer.write_eof()
        async with asyncio.timeout(5):
            await reader.read(-1)
        writer.close()
        await asyncio.sleep(0.1)
        assert rig.proxy.connections == 0, "the connection ended with its peers"


async def test_events_and_logs_never_carry_a_path_query_or_header_value(
    tmp_path: Path, allowed: Origin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    names = table_resolver({})
    secret_path = f"/{CANARY}/x?token={CANARY}"
    headers = f"Host: {CANARY}\r\nAuthorization: Bearer {CANARY}\r\nProxy-Authorization: Basic {CANARY}\r\n\r\n"
    async with egress_rig(tmp_path, [f"127.0.0.6:{allowed.port}", "gone.test"], resolver=names) as rig:
        answers = [
            await exchange(rig.socket_path, f"GET http://127.0.0.6:{allowed.port}{secret_path} HTTP/1.1\r\n{headers}".encode()),
            await exchange(rig.socket_path, f"GET http://127.0.0.7:{allowed.port}{secret_path} HTTP/1.1\r\n{headers}".encode()),
            await exchange(rig.socket_path, f"GET http://gone.test{secret_path} HTTP/1.1\r\n{headers}".encode()),
            await exchange(rig.socket_path, f"GET {secret_path} HTTP/1.1\r\n{headers}".encode()),
            await exchange(rig.socket_path, f"GET http://127.0.0.6:{allowed.port}{secret_path} HTTP/1.1\r\nX: {CANARY}\x00\r\n\r\n".encode()),
        ]
    assert [status_of(answer) for answer in answers] == [200, 403, 502, 405, 400]
    assert [e.kind for e in rig.events] == ["allowed", "blocked", "failed"]
    assert CANARY in allowed.seen[0].target and allowed.seen[0].headers["authorization"] == "Bearer " + CANARY
    assert "proxy-authorization" not in allowed.seen[0].headers
    assert CANARY not in repr(rig.events) and CANARY not in repr(rig.proxy.stats)
    assert CANARY not in caplog.text
    assert all(CANARY.encode() not in answer for answer in answers[1:])
