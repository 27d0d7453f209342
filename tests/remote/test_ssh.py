"""The SSH layer against a real OpenSSH sshd on loopback, with the real Docker engine behind it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from console.errors import UsageError
from console.remote.ssh import (
    HostKeyChanged,
    LinkStatus,
    SshAuthFailed,
    SshError,
    SshLink,
    SshLinkDown,
    SshTarget,
    SshUnreachable,
)
from console.remote.sshkeys import canonical_public_key, fingerprint, generate_keypair
from console.remote.tunnel import Tunnel
from console.runtime.attach import open_channel
from console.runtime.containers import LABEL_TOOLBOX, ContainerSpec, Engine
from console.runtime.enginehttp import Endpoint, demux, get_json, request
from tests.conftest import CANARY
from tests.support.sshd import Sshd

IMAGE = "tbx-base:test"


@pytest.fixture(scope="module")
def client_key() -> tuple[str, str]:
    return generate_keypair("tbx-test")


@pytest.fixture
def sshd(client_key: tuple[str, str], tmp_path: Path) -> Iterator[Sshd]:
    # 127.0.0.2, not .1: each simulated droplet gets its own loopback address.
    with Sshd([client_key[1]], host="127.0.0.2", workdir=tmp_path / "sshd") as server:
        yield server


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # Short on purpose: pytest's tmp_path can exceed the 107-byte unix socket path limit.
    path = Path(f"/tmp/tbx-sock-{secrets.token_hex(3)}")
    yield path
    with contextlib.suppress(OSError):
        for child in path.iterdir():
            child.unlink()
        path.rmdir()


def target_of(server: Sshd) -> SshTarget:
    return SshTarget.parse(server.target)


async def wait_for(predicate, timeout: float = 5.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def docker_ready() -> None:
    try:
        docker.DockerClient(base_url="unix:///var/run/docker.sock").ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no Docker engine: {exc}")


# -- pure parts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("root@203.0.113.7", SshTarget("root", "203.0.113.7", 22)),
        ("deploy@box.example.com:2222", SshTarget("deploy", "box.example.com", 2222)),
        ("root@127.0.0.3:40022", SshTarget("root", "127.0.0.3", 40022)),
    ],
)
def test_parse_targets(text: str, expected: SshTarget) -> None:
    assert SshTarget.parse(text) == expected
    assert SshTarget.parse(str(expected)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "203.0.113.7",
        "root@",
        "@host",
        "root@host:0",
        "root@host:70000",
        "root@300.1.1.1",
        "root@-bad-.com",
        "root@a b",
        "root@[::1]:22",
    ],
)
def test_parse_rejects_bad_targets(text: str) -> None:
    with pytest.raises(UsageError, match="USER@HOST|not a valid|IPv4|port"):
        SshTarget.parse(text)


def test_generated_key_and_fingerprint_agree_with_openssh(tmp_path: Path) -> None:
    private, public = generate_keypair("me@tbx")
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert public.startswith("ssh-ed25519 ") and public.endswith(" me@tbx")
    (tmp_path / "key.pub").write_text(public + "\n")
    keygen = subprocess.run(
        ["ssh-keygen", "-lf", str(tmp_path / "key.pub")], capture_output=True, text=True, check=True
    )
    assert keygen.stdout.split()[1] == fingerprint(public)
    # ssh-keygen derives the same public key from the private text.
    (tmp_path / "key").write_text(private)
    (tmp_path / "key").chmod(0o600)
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(tmp_path / "key")], capture_output=True, text=True, check=True
    )
    assert canonical_public_key(derived.stdout) == canonical_public_key(public)
    with pytest.raises(UsageError):
        fingerprint("ssh-ed25519 not-base64!")


# -- host keys and authentication --------------------------------------------------------


async def test_first_use_returns_the_presented_host_key(sshd: Sshd, client_key: tuple[str, str]) -> None:
    link = SshLink(target_of(sshd), client_key[0], None)
    await link.start()
    try:
        assert link.status is LinkStatus.UP
        assert link.host_key is not None
        assert canonical_public_key(link.host_key) == canonical_public_key(sshd.host_key_line)
        assert link.fingerprint == fingerprint(sshd.host_key_line)
    finally:
        await link.close()
    assert link.status is LinkStatus.DOWN


async def test_pinned_host_key_connects(sshd: Sshd, client_key: tuple[str, str]) -> None:
    link = SshLink(target_of(sshd), client_key[0], sshd.host_key_line)
    await link.start()
    try:
        result = await link.run("echo $((6 * 7)); echo oops >&2; exit 3")
        assert result == (3, "42\n", "oops\n")
        assert (await link.run("cat", input="piped")).stdout == "piped"
        with pytest.raises(SshError, match="did not finish within 0.2 s"):
            await link.run("sleep 5", timeout=0.2)
        assert (await link.run("echo still-up")).stdout == "still-up\n"
    finally:
        await link.close()


async def test_changed_host_key_is_refused_with_both_fingerprints(sshd: Sshd, client_key: tuple[str, str]) -> None:
    pinned = sshd.host_key_line
    sshd.rotate_host_key()
    link = SshLink(target_of(sshd), client_key[0], pinned)
    with pytest.raises(HostKeyChanged) as caught:
        await link.start()
    message = str(caught.value)
    assert fingerprint(pinned) in message and fingerprint(sshd.host_key_line) in message
    assert "\n" not in message and "re-pin" in message
    assert caught.value.presented_key.split()[:2] == sshd.host_key_line.split()[:2]
    assert link.status is LinkStatus.REFUSED
    with pytest.raises(HostKeyChanged):
        await link.run("true")


async def test_host_key_change_on_a_live_link_stops_it_for_good(sshd: Sshd, client_key: tuple[str, str]) -> None:
    link = SshLink(target_of(sshd), client_key[0], None, backoff_initial=0.05)
    seen: list[LinkStatus] = []
    link.on_status(seen.append)
    await link.start()  # trust on first use pins the key for every reconnect
    sshd.rotate_host_key()  # the restart drops the link; the host comes back with a new key
    await wait_for(lambda: link.status is LinkStatus.REFUSED)

    def refusals() -> int:
        return sshd.log_file.read_text().count("Host key is not trusted")

    await wait_for(lambda: refusals() == 1)
    await asyncio.sleep(0.5)
    assert refusals() == 1  # no retry loop against a host that changed identity
    assert seen == [LinkStatus.UP, LinkStatus.RECONNECTING, LinkStatus.REFUSED]
    assert fingerprint(sshd.host_key_line) in link.last_error
    start = time.monotonic()
    with pytest.raises(HostKeyChanged):
        await link.run("true")
    assert time.monotonic() - start < 0.1  # refused at once, no waiting for a reconnect
    await link.close()
    assert link.status is LinkStatus.REFUSED


async def test_unknown_client_key_is_a_clear_error(sshd: Sshd) -> None:
    stranger, _public = generate_keypair("stranger")
    link = SshLink(target_of(sshd), stranger, None)
    with pytest.raises(
        SshAuthFailed, match=r"refused the toolbox's SSH key; add its public key to ~root/.ssh/authorized_keys"
    ):
        await link.start()
    assert link.status is LinkStatus.DOWN
    # Authorising the key later is all it takes.
    sshd.add_authorized_key(_public)
    await link.start()
    assert link.status is LinkStatus.UP
    await link.close()


async def test_nothing_listening_is_unreachable(client_key: tuple[str, str]) -> None:
    from tests.support.sshd import free_port

    link = SshLink(SshTarget("root", "127.0.0.2", free_port("127.0.0.2")), client_key[0], None)
    with pytest.raises(SshUnreachable, match="cannot reach SSH at root@127.0.0.2:.*refused"):
        await link.start()
    assert link.status is LinkStatus.DOWN


def test_bad_private_key_text_is_never_echoed() -> None:
    broken = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{CANARY}\n-----END OPENSSH PRIVATE KEY-----\n"
    with pytest.raises(UsageError) as caught:
        SshLink(SshTarget("root", "127.0.0.2"), broken, None)
    assert CANARY not in str(caught.value) and "not a valid" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_private_key_never_reaches_logs_errors_or_reprs(
    sshd: Sshd, client_key: tuple[str, str], socket_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    private = client_key[0]
    body = [line for line in private.splitlines() if not line.startswith("-----")]
    texts: list[str] = []
    link = SshLink(target_of(sshd), private, None)
    await link.start()
    texts += [repr(link), str(vars(link))]
    await link.put_file(str(sshd.workdir / "x"), b"data")
    await link.read_file(str(sshd.workdir / "x"))
    sshd.drop_connections()
    await wait_for(lambda: link.status is LinkStatus.UP and link.reconnects == 1)
    await link.close()
    wrong = SshLink(target_of(sshd), private, generate_keypair("other")[1])
    with pytest.raises(HostKeyChanged) as caught:
        await wrong.start()
    texts.append(str(caught.value))
    tunnel = await asyncio.to_thread(Tunnel.open, target_of(sshd), private, None, socket_dir=socket_dir)
    texts += [repr(tunnel), str(vars(tunnel))]
    await asyncio.to_thread(tunnel.close)
    texts.append(caplog.text)
    assert "ssh link" in caplog.text  # the logs were captured at all
    for text in texts:
        assert not any(line in text for line in body)
        assert "PRIVATE KEY" not in text


# -- reconnects -------------------------------------------------------------------------


async def test_dropped_link_reconnects_and_operations_wait_for_it(sshd: Sshd, client_key: tuple[str, str]) -> None:
    link = SshLink(target_of(sshd), client_key[0], sshd.host_key_line, backoff_initial=0.05, backoff_max=0.2)
    seen: list[LinkStatus] = []
    link.on_status(seen.append)
    await link.start()
    sshd.stop()
    await wait_for(lambda: link.status is LinkStatus.RECONNECTING)
    link.wait_timeout = 0.3
    with pytest.raises(SshLinkDown, match="is reconnecting"):
        await link.run("true")
    # A command issued while the host is away completes once it is back.
    link.wait_timeout = 10
    pending = asyncio.create_task(link.run("echo back"))
    await asyncio.sleep(0.3)
    assert not pending.done()
    sshd.start()
    assert (await asyncio.wait_for(pending, 5)).stdout == "back\n"
    assert seen == [LinkStatus.UP, LinkStatus.RECONNECTING, LinkStatus.UP]
    assert link.reconnects == 1 and link.last_error == ""
    await link.close()


async def test_silent_link_is_caught_by_keepalives(sshd: Sshd, client_key: tuple[str, str]) -> None:
    link = SshLink(target_of(sshd), client_key[0], None, keepalive_interval=0.3, keepalive_count_max=2)
    await link.start()
    frozen = sshd.freeze_connections()  # TCP stays open, nothing answers
    try:
        start = time.monotonic()
        await wait_for(lambda: link.status is LinkStatus.RECONNECTING, timeout=5)
        noticed = time.monotonic() - start
        await wait_for(lambda: link.status is LinkStatus.UP, timeout=5)
        assert (await link.run("echo alive")).stdout == "alive\n"
    finally:
        sshd.kill(frozen)
        await link.close()
    assert noticed < 2.5


# -- files -----------------------------------------------------------------------------


async def test_put_file_is_atomic_and_read_file_is_incremental(
    sshd: Sshd, client_key: tuple[str, str], tmp_path: Path
) -> None:
    # The "remote" host is this machine, so its files can be checked directly.
    remote = tmp_path / "remote"
    remote.mkdir()
    link = SshLink(target_of(sshd), client_key[0], None)
    await link.start()
    try:
        target = remote / "etc" / "tbx" / "env"
        await link.put_file(str(target), b"A=1\n", 0o640, parents=True)
        assert target.read_bytes() == b"A=1\n"
        assert stat.S_IMODE(target.stat().st_mode) == 0o640
        inode = target.stat().st_ino
        await link.put_file(str(target), b"A=2\n")
        assert target.read_bytes() == b"A=2\n"
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert target.stat().st_ino != inode  # replaced by rename, never rewritten in place
        assert sorted(p.name for p in target.parent.iterdir()) == ["env"]
        with pytest.raises(Exception, match="does not exist"):
            await link.put_file(str(remote / "missing" / "f"), b"x")

        log = remote / "audit.jsonl"
        assert await link.read_file(str(log)) == b""
        log.write_bytes(b'{"seq":1}\n')
        first = await link.read_file(str(log))
        assert first == b'{"seq":1}\n'
        with log.open("ab") as out:
            out.write(b'{"seq":2}\n')
        assert await link.read_file(str(log), offset=len(first)) == b'{"seq":2}\n'
        assert await link.read_file(str(log), offset=10_000) == b""
        big = os.urandom(3 * 1024 * 1024 + 17)
        await link.put_file(str(remote / "big"), big)
        assert await link.read_file(str(remote / "big"), offset=5) == big[5:]
        # SFTP survives a reconnect too.
        sshd.drop_connections()
        await wait_for(lambda: link.reconnects == 1 and link.status is LinkStatus.UP)
        assert await link.read_file(str(log)) == b'{"seq":1}\n{"seq":2}\n'
    finally:
        await link.close()


# -- the Docker engine through the link ----------------------------------------------------


async def test_open_unix_reaches_the_remote_engine(sshd: Sshd, client_key: tuple[str, str]) -> None:
    docker_ready()
    link = SshLink(target_of(sshd), client_key[0], None)
    await link.start()
    try:
        reader, writer = await link.open_unix("/var/run/docker.sock")
        writer.write(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        response = await asyncio.wait_for(reader.read(), 5)
        assert response.startswith(b"HTTP/1.1 200") and response.endswith(b"OK")
        writer.close()
        with pytest.raises(Exception, match="cannot open /nowhere.sock"):
            await link.open_unix("/nowhere.sock")
    finally:
        await link.close()


def test_forwarded_socket_serves_the_docker_sdk_and_engine(
    sshd: Sshd, client_key: tuple[str, str], socket_dir: Path
) -> None:
    docker_ready()
    with Tunnel.open(target_of(sshd), client_key[0], None, socket_dir=socket_dir) as tunnel:
        assert tunnel.status is LinkStatus.UP
        assert fingerprint(tunnel.host_key) == fingerprint(sshd.host_key_line)
        assert tunnel.endpoint.startswith(f"unix://{socket_dir}/") and tunnel.endpoint.endswith(".sock")
        path = Path(tunnel.endpoint.removeprefix("unix://"))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
        assert docker.DockerClient(base_url=tunnel.endpoint).ping()
        engine = Engine(tunnel.endpoint)
        try:
            assert engine.client.version()["ApiVersion"]
            assert isinstance(engine.managed("no-such-toolbox"), list)
        finally:
            engine.close()
        assert tunnel.run("echo via-tunnel").stdout == "via-tunnel\n"
        version = asyncio.run(get_json(Endpoint(tunnel.endpoint), "/version"))
        assert version["ApiVersion"]
    assert not path.exists()  # closing removes the socket
    assert tunnel.status is LinkStatus.DOWN


def test_tunnel_open_failures_raise_and_leave_nothing_running(
    sshd: Sshd, client_key: tuple[str, str], socket_dir: Path
) -> None:
    threads = threading.active_count()
    with pytest.raises(HostKeyChanged):
        Tunnel.open(target_of(sshd), client_key[0], generate_keypair("x")[1], socket_dir=socket_dir)
    with pytest.raises(SshAuthFailed):
        Tunnel.open(target_of(sshd), generate_keypair("x")[0], None, socket_dir=socket_dir)
    assert threading.active_count() == threads
    assert not socket_dir.exists() or not any(socket_dir.iterdir())
    # A socket left by a process that died is cleared by the next open; a live one is kept.
    socket_dir.mkdir(mode=0o700, exist_ok=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(socket_dir / "127.0.0.2-22-dead00.sock"))
    stale.close()
    with (
        Tunnel.open(target_of(sshd), client_key[0], None, socket_dir=socket_dir) as first,
        Tunnel.open(target_of(sshd), client_key[0], None, socket_dir=socket_dir) as second,
    ):
        assert first.endpoint != second.endpoint
        assert sorted(p.name for p in socket_dir.iterdir()) == sorted(Path(t.endpoint).name for t in (first, second))


async def test_attach_stream_runs_through_the_forward(
    sshd: Sshd, client_key: tuple[str, str], socket_dir: Path
) -> None:
    """The product path: a hardened server container and its stdio attach, over SSH."""
    docker_ready()
    tunnel = await asyncio.to_thread(Tunnel.open, target_of(sshd), client_key[0], None, socket_dir=socket_dir)
    engine = await asyncio.to_thread(Engine, tunnel.endpoint)
    name = f"tbx-ssh-test-{secrets.token_hex(4)}"
    spec = ContainerSpec(name=name, image=IMAGE, command=["cat"], labels={LABEL_TOOLBOX: "ssh-test"})
    container = await asyncio.to_thread(engine.create, spec)
    try:
        await asyncio.to_thread(engine.start, container.id)
        channel = await open_channel(Endpoint(tunnel.endpoint), container.id)
        lines: asyncio.Queue[bytes] = asyncio.Queue()
        channel.on_stdout(lines.put_nowait)
        for n in range(3):
            await channel.send(b'{"jsonrpc":"2.0","id":%d}' % n)
            assert await asyncio.wait_for(lines.get(), 5) == b'{"jsonrpc":"2.0","id":%d}' % n
        payload = b"x" * 300_000  # several SSH windows' worth, one line
        await channel.send(payload)
        assert await asyncio.wait_for(lines.get(), 10) == payload
        await channel.aclose()
    finally:
        await asyncio.to_thread(engine.remove, container.id)
        await asyncio.to_thread(engine.close)
        await asyncio.to_thread(tunnel.close)


async def test_half_close_reaches_the_container(sshd: Sshd, client_key: tuple[str, str], socket_dir: Path) -> None:
    """Closing our side of a hijacked attach closes the container's stdin; its output still arrives."""
    docker_ready()
    tunnel = await asyncio.to_thread(Tunnel.open, target_of(sshd), client_key[0], None, socket_dir=socket_dir)
    client = docker.DockerClient(base_url=tunnel.endpoint)
    created = client.api.create_container(
        IMAGE,
        ["sh", "-c", "cat; echo done"],
        stdin_open=True,
        network_disabled=True,
        host_config=client.api.create_host_config(network_mode="none"),
    )  # docker-py sets StdinOnce with stdin_open: stdin EOF ends cat
    try:
        response = await request(
            Endpoint(tunnel.endpoint),
            "POST",
            f"/containers/{created['Id']}/attach",
            {"stream": 1, "stdin": 1, "stdout": 1, "stderr": 1},
            upgrade=True,
        )
        assert response.status == 101
        client.api.start(created["Id"])
        response.writer.write(b"hello\n")
        response.writer.write_eof()
        out = b""
        async with asyncio.timeout(10):
            async for stream, data in demux(response.body_chunks()):
                out += data if stream == 1 else b""
        assert out == b"hello\ndone\n"
        response.close()
    finally:
        client.api.remove_container(created["Id"], force=True)
        client.close()
        await asyncio.to_thread(tunnel.close)


def test_engine_calls_survive_a_dropped_link(sshd: Sshd, client_key: tuple[str, str], socket_dir: Path) -> None:
    docker_ready()
    with Tunnel.open(target_of(sshd), client_key[0], sshd.host_key_line, socket_dir=socket_dir) as tunnel:
        seen: list[LinkStatus] = []
        back = threading.Event()
        tunnel.on_status(lambda status: (seen.append(status), status is LinkStatus.UP and back.set()))
        engine = Engine(tunnel.endpoint)
        try:
            assert engine.client.ping()
            sshd.drop_connections()
            assert back.wait(5), f"the link did not come back: {tunnel.last_error}"
            assert seen == [LinkStatus.RECONNECTING, LinkStatus.UP]
            # The pooled engine connection died with the old link; the next call opens a new one.
            assert engine.client.ping()
            assert engine.client.version()["ApiVersion"]
        finally:
            engine.close()
        assert tunnel.link.reconnects == 1
