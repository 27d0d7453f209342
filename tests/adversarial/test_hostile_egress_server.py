"""A hostile server with egress, from inside its own container: code run with ``docker exec``
as the server's user, in its network namespace and with its mounts, exactly what a
server process could do. It cannot widen its way out: the proxy's folder is read-only
and holds only its own socket, the host's loopback (the gateway's port, the origins) is
out of reach, talking to the socket directly instead of through the forwarder decides
nothing, another server's allowed host is not its, and a flood of connections or
garbage is refused without hurting the gateway.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from console.services import servers
from tests.gateway.conftest import Stack, _stack, writable
from tests.gateway import test_egress
from tests.gateway.test_egress import Internet, fetch
from tests.support.sharedkeys import shared_keyring_home

pytestmark = pytest.mark.docker

internet = test_egress.internet  # the origins on 127.0.0.2 and .3, a module fixture

FETCH_TOOL = [{"name": "fetch", "description": "Fetch a URL.", "inputSchema": {"type": "object"}}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_engine, internet: Internet) -> Iterator[Stack]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("hostile-egress")
    with shared_keyring_home(root):
        for stack in _stack(root, catalog_servers=()):
            for name, hosts in (("web", [f"127.0.0.2:{internet.https.port}"]), ("other", [])):
                writable(root / "shapes" / name)
                (root / "shapes" / name / "ca.pem").write_text(internet.certificate)
                stack.add_shapeshifter(name, FETCH_TOOL, egress=hosts, network="egress")
            yield stack


def inside(stack: Stack, server: str, code: str) -> Any:
    """Run ``code`` (Python printing one JSON value) in the server's container, as the server."""
    sid = servers.resolve(stack.ws, f"local/{server}").server.id
    [container] = docker.from_env().containers.list(filters={"label": f"io.tbx.server={sid}"})
    exit_code, out = container.exec_run(["python3", "-c", code])
    assert exit_code == 0, out.decode()
    return json.loads(out.decode().strip().splitlines()[-1])


ASK_SOCKET = """
import json, socket
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect("/run/tbx-egress/proxy.sock")
s.sendall({request!r}.encode("utf-8", "surrogatepass"))
print(json.dumps(s.recv(4096).decode(errors="replace").split("\\r\\n")[0]))
"""


def test_the_proxy_folder_is_read_only_and_its_own(stack: Stack) -> None:
    said = inside(stack, "web", """
import json, os
try:
    open("/run/tbx-egress/evil.sock", "w"); wrote = True
except OSError as exc:
    wrote = exc.strerror
print(json.dumps([sorted(os.listdir("/run/tbx-egress")), wrote]))
""")
    assert said == [["proxy.sock"], "Read-only file system"]


def test_the_hosts_loopback_is_out_of_reach(stack: Stack, internet: Internet) -> None:
    port = int(stack.url.rsplit(":", 1)[1])
    said = inside(stack, "web", f"""
import json, socket
out = []
for host, port in (("127.0.0.1", {port}), ("127.0.0.2", {internet.https.port}), ("127.0.0.3", {internet.http.port})):
    try:
        socket.create_connection((host, port), timeout=3).close(); out.append("connected")
    except OSError as exc:
        out.append(type(exc).__name__)
print(json.dumps(out))
""")
    assert "connected" not in said, said


def test_the_socket_itself_decides_like_the_forwarder(stack: Stack, internet: Internet) -> None:
    request = f"CONNECT 127.0.0.3:{internet.http.port} HTTP/1.1\r\nHost: 127.0.0.3\r\n\r\n"
    assert inside(stack, "web", ASK_SOCKET.format(request=request)).startswith("HTTP/1.1 403")
    # Web's allowed host is not other's: the socket a connection comes in on names the server.
    request = f"CONNECT 127.0.0.2:{internet.https.port} HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\n"
    assert inside(stack, "web", ASK_SOCKET.format(request=request)).startswith("HTTP/1.1 200")
    assert inside(stack, "other", ASK_SOCKET.format(request=request)).startswith("HTTP/1.1 403")
    garbage = "\x00\x01GET\r\n\xff\ud800 nonsense\r\n\r\n"
    assert inside(stack, "web", ASK_SOCKET.format(request=garbage)).startswith("HTTP/1.1 400")


def test_a_flood_of_connections_is_capped_and_the_gateway_keeps_serving(stack: Stack, internet: Internet) -> None:
    said = inside(stack, "web", """
import json, socket
held, answers = [], []
for _ in range(150):
    s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
    held.append(s)
for s in held[-20:]:
    s.sendall(b"CONNECT 127.0.0.3:1 HTTP/1.1\\r\\n\\r\\n")
    answers.append(s.recv(200).decode(errors="replace").split(" ")[1:2])
print(json.dumps([a[0] if a else "closed" for a in answers]))
""")
    assert set(said) <= {"503", "closed"} and "503" in said, said
    token = stack.agent("local", "local/web")[1]
    text = fetch(stack, token, url=f"{internet.https.url}/bytes/1000")
    assert text.startswith("200 1000 bytes"), text
