"""Finding, starting and stopping the gateway as a process (console/gateway/process.py):
a real gateway started and stopped cleanly, and the state files a crash or another
process leaves behind, none of which is taken for a gateway or has its process signalled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console.errors import TbxError
from console.gateway import process
from console.gateway.process import GatewayInfo
from console.paths import Paths
from console.services.toolboxes import add_local
from console.vault import KeySource
from console.workspace import Workspace
from tests.support.sshd import free_port

REPO = Path(__file__).resolve().parents[2]

FAKE_GATEWAY = r"""
import http.server, json, os, signal, sys, time
state, on_sigint = sys.argv[1], sys.argv[2]

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"ok": True, "toolbox": "local"}).encode()
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Health)

def stop(signum, frame):
    os.unlink(state)
    os._exit(0)

signal.signal(signal.SIGINT, stop if on_sigint == "stop" else signal.SIG_IGN)
# What the gateway has written since its first version (console/gateway/service.py).
with open(state + ".tmp", "w") as f:
    f.write(json.dumps({"pid": os.getpid(), "url": f"http://127.0.0.1:{server.server_port}", "toolbox": "local",
                        "started": time.time(), "problems": [], "agents": ["agent-1"]}))
os.replace(state + ".tmp", state)
server.serve_forever()
"""


@pytest.fixture
def fake_gateway(tbx_home: Paths) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Start a process that publishes a state file in the gateway's format and answers
    /healthz; ``on_sigint`` is "stop" (it withdraws and exits) or "ignore" (a wedged one)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(on_sigint: str) -> subprocess.Popen[bytes]:
        path = process.state_file(tbx_home, "local")
        path.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen([sys.executable, "-c", FAKE_GATEWAY, str(path), on_sigint])
        started.append(proc)
        deadline = time.monotonic() + 10
        while process.running(tbx_home, "local") is None:
            assert proc.poll() is None and time.monotonic() < deadline, "the fake gateway did not come up"
            time.sleep(0.05)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def a_pid_that_is_gone() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def exit_code(child: int, timeout: float) -> int | None:
    """The exit code of a child this process started without keeping its Popen (None: no
    longer ours to wait for, reaped by ``subprocess`` when it started another)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, status = os.waitpid(child, os.WNOHANG)
        except ChildProcessError:
            return None
        if pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    raise AssertionError(f"process {child} did not exit within {timeout:g}s")


# -- the state file ----------------------------------------------------------------------


def test_the_state_file_is_written_as_every_gateway_wrote_it(tbx_home: Paths) -> None:
    info = GatewayInfo(url="http://127.0.0.1:8765", pid=4242, started=1700000000.5, problems=("audit: full",),
                       agents=("agent-1",), toolbox="local")
    process.write_state(tbx_home, info)
    path = tbx_home.state_dir / "gateway-local.json"
    assert list(json.loads(path.read_text()).items()) == [
        ("pid", 4242), ("url", "http://127.0.0.1:8765"), ("toolbox", "local"), ("started", 1700000000.5),
        ("problems", ["audit: full"]), ("agents", ["agent-1"])]
    assert process.read_state(tbx_home, "local") == info
    assert not path.with_name(path.name + ".tmp").exists()
    process.remove_state(tbx_home, "local")
    assert not path.exists() and process.read_state(tbx_home, "local") is None
    process.remove_state(tbx_home, "local")  # twice: a gateway stopping after its file was removed


@pytest.mark.parametrize("content", [
    '{"pid": 4242, "url": "http://127.0.0.1:87',  # cut off mid-write
    "",
    "[1, 2]",
    '{"pid": 0, "url": "http://127.0.0.1:8765", "started": 1}',  # would signal our own process group
    '{"pid": "x", "url": "http://127.0.0.1:8765", "started": 1}',
    '{"url": "http://127.0.0.1:8765", "started": 1}',
], ids=["half-written", "empty", "not-an-object", "pid-0", "pid-not-a-number", "no-pid"])
def test_a_state_file_no_gateway_wrote_is_no_gateway(tbx_home: Paths, content: str) -> None:
    path = process.state_file(tbx_home, "local")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    assert process.read_state(tbx_home, "local") is None
    assert process.running(tbx_home, "local") is None
    process.stop(tbx_home, "local", timeout=1)  # nothing to stop, nothing signalled
    assert path.read_text() == content


# -- running ---------------------------------------------------------------------------


def test_a_gateway_whose_process_is_gone_is_not_running_even_if_its_address_answers(
        tbx_home: Paths, fake_gateway) -> None:  # noqa: ANN001
    live = fake_gateway("stop")
    answering = process.read_state(tbx_home, "local")
    assert answering is not None and answering.pid == live.pid and answering.agents == ("agent-1",)
    process.write_state(tbx_home, GatewayInfo(answering.url, a_pid_that_is_gone(), answering.started,
                                              toolbox="local"))
    assert process.running(tbx_home, "local") is None


def test_a_pid_reused_by_another_process_is_neither_taken_for_the_gateway_nor_signalled(tbx_home: Paths) -> None:
    other = subprocess.Popen(["sleep", "60"])
    try:
        # A gateway killed outright left its file; its pid now belongs to someone else.
        process.write_state(tbx_home, GatewayInfo(f"http://127.0.0.1:{free_port('127.0.0.1')}", other.pid,
                                                  time.time(), toolbox="local"))
        assert process.running(tbx_home, "local") is None
        process.stop(tbx_home, "local", timeout=1)
        time.sleep(0.2)
        assert other.poll() is None, "the other process was signalled"
    finally:
        other.kill()
        other.wait()


# -- stop ------------------------------------------------------------------------------


def test_stop_asks_with_sigint_and_waits_until_the_gateway_withdrew(tbx_home: Paths, fake_gateway) -> None:  # noqa: ANN001
    proc = fake_gateway("stop")
    process.stop(tbx_home, "local", timeout=10)
    assert process.running(tbx_home, "local") is None
    assert proc.wait(5) == 0, "it stopped on SIGINT, not SIGKILL"
    assert not process.state_file(tbx_home, "local").exists()


def test_a_gateway_that_does_not_stop_when_asked_is_killed(tbx_home: Paths, fake_gateway) -> None:  # noqa: ANN001
    proc = fake_gateway("ignore")
    began = time.monotonic()
    process.stop(tbx_home, "local", timeout=1)
    assert proc.wait(5) == -signal.SIGKILL
    assert time.monotonic() - began < 5
    assert process.running(tbx_home, "local") is None


# -- a real gateway --------------------------------------------------------------------


@pytest.mark.docker
def test_start_finds_a_real_gateway_running_and_stop_stops_it_cleanly(
        tbx_home: Paths, monkeypatch: pytest.MonkeyPatch, docker_engine) -> None:  # noqa: ANN001
    """With a passphrase vault: the passphrase is handed to the gateway process."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    port = free_port("127.0.0.1")
    tbx_home.config_file.write_text(f"[gateway]\nport = {port}\n")
    ws = Workspace.create(tbx_home, KeySource(passphrase="correct horse battery staple"))
    add_local(ws, "local")
    assert process.running(tbx_home, "local") is None

    info = process.start(tbx_home, "local", passphrase="correct horse battery staple")
    try:
        assert info.url == f"http://127.0.0.1:{port}" and info.toolbox == "local" and info.problems == ()
        assert process.running(tbx_home, "local") == info
        assert process.start(tbx_home, "local") == info, "a running gateway is returned, not started twice"
        os.kill(info.pid, 0)
    finally:
        process.stop(tbx_home, "local")
    assert process.running(tbx_home, "local") is None
    # It stops answering first, then flushes its audit log, withdraws its address and exits.
    assert exit_code(info.pid, 15) == 0
    assert not process.state_file(tbx_home, "local").exists()
    ws.refresh()
    assert ws.repos.toolboxes.require("local").gateway_address is None
    assert [r["action"] for r in ws.audit.records()][-1] == "gateway.stop"
    assert "gateway for toolbox local at" in process.log_file(tbx_home, "local").read_text()


def test_a_gateway_that_cannot_start_says_where_its_log_is(tbx_home: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    Workspace.create(tbx_home, KeySource(passphrase="correct horse battery staple"))
    with pytest.raises(TbxError, match="the gateway exited at start") as raised:
        process.start(tbx_home, "nowhere", passphrase="correct horse battery staple")  # no such toolbox
    assert str(process.log_file(tbx_home, "nowhere")) in str(raised.value)
