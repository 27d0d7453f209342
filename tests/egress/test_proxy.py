"""The egress proxy as a server's HTTP clients use it: real httpx clients through the
container's forwarder (TCP to the proxy's Unix socket), real origins on 127.0.0.x."""

from __future__ import annotations

import asyncio
import socket
import ssl
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest

from console.egress import AllowList, EgressError, EgressEvent, EgressProxy
from tests.support.egress_net import (
    Origin,
    Sink,
    egress_rig,
    exchange,
    status_of,
    table_resolver,
    tls_for,
)


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    server = await Origin("127.0.0.2").start()
    yield server
    await server.close()


@pytest.fixture
async def other() -> AsyncIterator[Origin]:
    server = await Origin("127.0.0.3").start()
    yield server
    await server.close()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    server = await Sink("127.0.0.4").start()
    yield server
    await server.close()


def client(proxy_url: str, verify: ssl.SSLContext | bool = True) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(proxy=proxy_url, verify=verify, trust_env=False, timeout=10)


async def open_tunnel(socket_path: Path, target: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    async with asyncio.timeout(5):
        head = await reader.readuntil(b"\r\n\r\n")
    return reader, writer, head


async def test_a_plain_http_get_reaches_an_allowed_origin_in_origin_form(tmp_path: Path, origin: Origin) -> None:
    async with egress_rig(tmp_path, [f"127.0.0.2:{origin.port}"]) as rig, client(rig.forwarder.url) as http:
        response = await http.get(
            f"{origin.url}/hello?x=1",
            headers={"Proxy-Authorization": "Basic c2VjcmV0", "Keep-Alive": "5", "X-Kept": "yes"},
        )
    assert response.status_code == 200
    assert response.text == "hello from 127.0.0.2"
    seen = origin.seen[0]
    assert (seen.method, seen.target) == ("GET", "/hello?x=1")
    assert seen.headers["host"] == f"127.0.0.2:{origin.port}"
    assert seen.headers["x-kept"] == "yes"
    assert seen.headers["connection"] == "close"
    assert "proxy-authorization" not in seen.headers and "keep-alive" not in seen.headers
    assert rig.events == [EgressEvent("allowed", "127.0.0.2", origin.port, "", f"127.0.0.2:{origin.port}")]
    assert rig.proxy.stats.allowed == 1


async def test_a_post_body_is_carried_whole(tmp_path: Path, origin: Origin) -> None:
    body = bytes(range(256)) * 2048  # 512 KiB: many chunks each way
    async with egress_rig(tmp_path, [f"127.0.0.2:{origin.port}"]) as rig, client(rig.forwarder.url) as http:
        response = await http.post(f"{origin.url}/echo", content=body)
    assert response.content == body
    assert origin.seen[0].body == body
    assert rig.proxy.stats.bytes_up > len(body) and rig.proxy.stats.bytes_down > len(body)


async def test_https_through_connect_verifies_the_origins_certificate(tmp_path: Path) -> None:
    server_tls, trusting = tls_for(tmp_path, "127.0.0.5")
    secure = await Origin("127.0.0.5", tls=server_tls).start()
    (tmp_path / "stranger").mkdir()
    _, trusting_another = tls_for(tmp_path / "stranger", "127.0.0.5")
    try:
        async with egress_rig(tmp_path, [f"127.0.0.5:{secure.port}"]) as rig:
            async with client(rig.forwarder.url, trusting) as http:
                response = await http.get(f"{secure.url}/bytes/100000")
            assert response.status_code == 200 and len(response.content) == 100_000
            async with client(rig.forwarder.url, trusting_another) as http:
                with pytest.raises(httpx2.ConnectError):  # the proxy does not touch TLS
                    await http.get(f"{secure.url}/")
        assert [e.kind for e in rig.events] == ["allowed", "allowed"]
    finally:
        await secure.close()


async def test_a_host_not_on_the_list_is_refused_and_says_how_to_allow_it(
    tmp_path: Path, origin: Origin, other: Origin
) -> None:
    async with egress_rig(tmp_path, [f"127.0.0.2:{origin.port}"]) as rig, client(rig.forwarder.url) as http:
        response = await http.get(f"{other.url}/")
    assert response.status_code == 403
    dest = f"127.0.0.3:{other.port}"
    assert f"tbx server egress box/srv --allow-host {dest}" in response.text
    assert response.text.count("\n") == 1
    assert other.connections == 0
    assert rig.kinds() == [("blocked", "127.0.0.3", other.port, "not allowed")]
    assert rig.proxy.stats.blocked == 1


async def test_https_to_a_host_not_on_the_list_never_reaches_it(tmp_path: Path, other: Origin) -> None:
    async with egress_rig(tmp_path, ["127.0.0.2"]) as rig, client(rig.forwarder.url) as http:
        with pytest.raises(httpx2.ProxyError):
            await http.get(f"https://127.0.0.3:{other.port}/")
    assert other.connections == 0
    assert rig.kinds() == [("blocked", "127.0.0.3", other.port, "not allowed")]


async def test_an_allowed_host_on_another_port_is_refused(tmp_path: Path, origin: Origin, other: Origin) -> None:
    entries = ["127.0.0.2", f"127.0.0.3:{other.port + 1}"]
    async with egress_rig(tmp_path, entries) as rig, client(rig.forwarder.url) as http:
        assert (await http.get(f"{origin.url}/")).status_code == 403  # no port: 80 and 443 only
        assert (await http.get(f"{other.url}/")).status_code == 403
    assert origin.connections == other.connections == 0
    assert [e.kind for e in rig.events] == ["blocked", "blocked"]


async def test_a_wildcard_admits_names_below_its_domain_only(tmp_path: Path, origin: Origin) -> None:
    names = table_resolver({"api.test.internal": ["127.0.0.2"], "test.internal": ["127.0.0.2"]})
    entries = [f"*.test.internal:{origin.port}"]
    rig_at = egress_rig(tmp_path, entries, resolver=names, allow_private=True)
    async with rig_at as rig, client(rig.forwarder.url) as http:
        below = await http.get(f"http://api.test.internal:{origin.port}/")
        apex = await http.get(f"http://test.internal:{origin.port}/")
    assert below.status_code == 200 and apex.status_code == 403
    assert origin.seen[0].headers["host"] == f"api.test.internal:{origin.port}"
    assert [e.rule for e in rig.events] == [f"*.test.internal:{origin.port}", None]


async def test_update_refuses_new_connections_and_closes_open_tunnels(
    tmp_path: Path, sink: Sink, origin: Origin
) -> None:
    kept, dropped = f"127.0.0.2:{origin.port}", f"127.0.0.4:{sink.port}"
    async with egress_rig(tmp_path, [kept, dropped]) as rig:
        keep_r, keep_w, _ = await open_tunnel(rig.socket_path, kept)
        reader, writer, head = await open_tunnel(rig.socket_path, dropped)
        assert status_of(head) == 200
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"

        rig.proxy.update(AllowList.parse([kept]))
        async with asyncio.timeout(5):
            assert await reader.read(-1) == b"", "the tunnel to the removed host is closed"
        assert status_of(await exchange(rig.socket_path, f"CONNECT {dropped} HTTP/1.1\r\nHost: x\r\n\r\n".encode())) == 403

        keep_w.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(5):
            assert b"hello from 127.0.0.2" in await keep_r.read(-1), "the kept tunnel still works"
        writer.close()
        keep_w.close()
    assert rig.kinds()[-1] == ("blocked", "127.0.0.4", sink.port, "not allowed")


async def test_update_reaches_a_connection_still_connecting(tmp_path: Path, origin: Origin) -> None:
    resolving = asyncio.Event()

    async def slow(host: str, port: int) -> list[str]:
        resolving.set()
        await asyncio.sleep(0.2)
        return ["127.0.0.2"]

    async with egress_rig(tmp_path, [f"slow.test:{origin.port}"], resolver=slow, allow_private=True) as rig:
        get = f"GET http://slow.test:{origin.port}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        answer = asyncio.create_task(exchange(rig.socket_path, get))
        await resolving.wait()
        rig.proxy.update(AllowList())
        assert status_of(await answer) == 403
    assert origin.seen == []
    assert rig.kinds() == [("blocked", "slow.test", origin.port, "not allowed")]


async def test_localhost_by_name_is_a_private_address_but_a_literal_address_is_meant(
    tmp_path: Path, origin: Origin
) -> None:
    local = await Origin("127.0.0.1").start()
    try:
        entries = [f"localhost:{local.port}", f"127.0.0.2:{origin.port}"]
        async with egress_rig(tmp_path, entries) as rig, client(rig.forwarder.url) as http:
            by_name = await http.get(f"http://localhost:{local.port}/")
            literal = await http.get(f"{origin.url}/")
        assert by_name.status_code == 403 and "private address" in by_name.text
        assert literal.status_code == 200
        assert local.connections == 0
        assert rig.kinds() == [
            ("blocked", "localhost", local.port, "private address"),
            ("allowed", "127.0.0.2", origin.port, ""),
        ]
        async with egress_rig(tmp_path, entries, allow_private=True) as rig, client(rig.forwarder.url) as http:
            assert (await http.get(f"http://localhost:{local.port}/")).status_code == 200
    finally:
        await local.close()


async def test_close_ends_open_tunnels_and_removes_the_socket(tmp_path: Path, sink: Sink) -> None:
    async with egress_rig(tmp_path, [f"127.0.0.4:{sink.port}"]) as rig:
        reader, writer, head = await open_tunnel(rig.socket_path, f"127.0.0.4:{sink.port}")
        assert status_of(head) == 200
        await rig.proxy.close()
        async with asyncio.timeout(5):
            assert await reader.read(-1) == b""
        writer.close()
        assert not rig.socket_path.exists()


async def test_a_tunnel_where_nothing_moves_is_closed_after_the_idle_timeout(tmp_path: Path, sink: Sink) -> None:
    async with egress_rig(tmp_path, [f"127.0.0.4:{sink.port}"], idle_timeout=0.5) as rig:
        reader, writer, _ = await open_tunnel(rig.socket_path, f"127.0.0.4:{sink.port}")
        for _ in range(4):  # traffic keeps it open past the timeout
            await asyncio.sleep(0.3)
            writer.write(b"tick")
            assert await reader.readexactly(4) == b"tick"
        started = asyncio.get_running_loop().time()
        async with asyncio.timeout(5):
            assert await reader.read(-1) == b""
        assert 0.4 < asyncio.get_running_loop().time() - started < 2
        writer.close()
        assert rig.proxy.connections == 0


async def test_a_failing_event_listener_does_not_stop_the_proxy(tmp_path: Path, origin: Origin) -> None:
    def broken(event: EgressEvent) -> None:
        raise RuntimeError("listener bug")

    proxy = EgressProxy("box/srv", tmp_path / "p.sock", AllowList.parse([f"127.0.0.2:{origin.port}"]), broken)
    await proxy.start()
    try:
        get = f"GET {origin.url}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        assert status_of(await exchange(proxy.socket_path, get)) == 200
        assert proxy.stats.allowed == 1
    finally:
        await proxy.close()


async def test_failures_to_reach_an_allowed_host_are_502_and_504(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.2", 0))
        closed_port = probe.getsockname()[1]

    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(30)
        return []

    names = table_resolver({})
    async with egress_rig(tmp_path, [f"127.0.0.2:{closed_port}", "*:81"], resolver=names) as rig:
        refused = await exchange(rig.socket_path, f"CONNECT 127.0.0.2:{closed_port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        unknown = await exchange(rig.socket_path, b"GET http://nowhere.test:81/ HTTP/1.1\r\nHost: x\r\n\r\n")
    async with egress_rig(tmp_path, ["*:81"], resolver=slow, connect_timeout=0.3) as slow_rig:
        late = await exchange(slow_rig.socket_path, b"CONNECT nowhere.test:81 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status_of(refused), status_of(unknown), status_of(late)) == (502, 502, 504)
    assert rig.kinds() == [
        ("failed", "127.0.0.2", closed_port, "connect failed"),
        ("failed", "nowhere.test", 81, "does not resolve"),
    ]
    assert slow_rig.kinds() == [("failed", "nowhere.test", 81, "resolve timeout")]
    assert rig.proxy.stats.failed == 2


async def test_a_request_that_is_not_a_proxy_request_is_405(tmp_path: Path) -> None:
    async with egress_rig(tmp_path, ["*"]) as rig:
        answer = await exchange(rig.socket_path, b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert status_of(answer) == 405 and b"CONNECT HOST:PORT" in answer
    assert rig.events == []


async def test_start_replaces_a_stale_socket_and_opens_it_to_the_containers_uid(tmp_path: Path) -> None:
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / "egress.sock"))
    stale.close()
    async with egress_rig(tmp_path, []) as rig:
        mode = rig.socket_path.stat().st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o666
        assert status_of(await exchange(rig.socket_path, b"CONNECT a.com:443 HTTP/1.1\r\nHost: a\r\n\r\n")) == 403


async def test_start_refuses_to_remove_a_file_that_is_not_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "egress.sock"
    path.write_text("keep me")
    proxy = EgressProxy("box/srv", path, AllowList(), lambda event: None)
    with pytest.raises(EgressError, match="not a socket"):
        await proxy.start()
    assert path.read_text() == "keep me"
