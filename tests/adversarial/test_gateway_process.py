"""The gateway as a process: stopped by any signal it leaves a complete, verifiable trail;
killed outright, cutting its records is still caught; unable to record, it refuses calls.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import pytest

from console.catalog import load_catalog
from console.paths import Paths, resolve_paths
from console.services import agents, grants, servers, toolboxes
from console.services.grants import Target
from console.services.tools import approve
from console.tui.backend import Backend
from console.vault import KeySource
from console.workspace import Workspace
from tests.gateway.conftest import subprocess_env
from tests.support.rawmcp import INIT, RawAgent
from tests.support.sharedkeys import shared_keyring_home

pytestmark = pytest.mark.docker


@dataclass
class Home:
    paths: Paths
    ws: Workspace
    token: str

    def tbx(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "console", *args], env=subprocess_env(), capture_output=True,
                              text=True, timeout=60)

    def serve(self) -> tuple[subprocess.Popen[bytes], str]:
        proc = subprocess.Popen([sys.executable, "-m", "console", "gateway", "serve", "--port", "0"],
                                env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        state = self.paths.state_dir / "gateway-local.json"
        deadline = time.monotonic() + 60
        while not state.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"gateway did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.05)
        return proc, json.loads(state.read_text())["url"]

    def records(self) -> list[dict]:
        self.ws.refresh()
        return list(self.ws.audit.records())


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, docker_engine) -> Iterator[Home]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("process")
    with shared_keyring_home(root):
        paths = resolve_paths()
        paths.ensure()
        ws = Workspace.create(paths, KeySource(None))
        box = toolboxes.add_local(ws, "local")
        servers.add_server(ws, "local", load_catalog(paths).get("time"))
        approve(ws, "local", "time")
        _agent, token = agents.add_agent(ws, "prober")
        grants.grant(ws, "prober", Target.parse("local"))
        grants.grant(ws, "prober", Target.parse("local/time"))
        try:
            yield Home(paths, ws, token)
        finally:
            for container in docker.from_env().containers.list(all=True, filters={"label": f"io.tbx.toolbox={box.id}"}):
                container.remove(force=True)


def calls(url: str, token: str, count: int) -> None:
    with RawAgent(url, token) as raw:
        raw.initialize()
        for _ in range(count):
            assert "result" in raw.call("time__get_current_time", {"timezone": "UTC"})


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_any_stop_signal_leaves_a_complete_trail(home: Home, signum: int) -> None:
    proc, url = home.serve()
    calls(url, home.token, 5)
    proc.send_signal(signum)
    assert proc.wait(30) == 0, proc.stderr.read().decode() if proc.stderr else ""
    assert not (home.paths.state_dir / "gateway-local.json").exists()
    home.ws.refresh()
    assert home.ws.repos.toolboxes.require("local").gateway_address is None
    records = home.records()
    tail = [r["action"] for r in records[-4:]]
    assert tail[-1] == "gateway.stop" and "session.close" in tail, tail
    assert [r["action"] for r in records].count("tool.call") >= 5
    checkpoint = home.ws.audit_checkpoint
    assert checkpoint is not None and checkpoint.seq == records[-1]["seq"], "the checkpoint reaches the last record"
    verify = home.tbx("audit", "verify")
    assert verify.returncode == 0, verify.stderr


def test_after_kill_9_cutting_recorded_calls_is_caught(home: Home) -> None:
    proc, url = home.serve()
    calls(url, home.token, 5)
    time.sleep(home.ws.settings.gateway.audit_flush_seconds * 3)  # older than the flush interval
    proc.kill()
    proc.wait(10)
    log = home.paths.audit_log
    lines = log.read_bytes().splitlines(keepends=True)
    assert json.loads(lines[-1])["action"] == "tool.call"
    kept = log.with_name("audit.kept")
    shutil.copy(log, kept)
    try:
        log.write_bytes(b"".join(lines[:-2]))  # the last two calls, cut off the end
        verify = home.tbx("audit", "verify")
        assert verify.returncode == 1 and "cut off" in verify.stderr + verify.stdout, verify
    finally:
        shutil.copy(kept, log)
        (home.paths.state_dir / "gateway-local.json").unlink(missing_ok=True)


def test_a_gateway_that_cannot_record_refuses_calls_and_says_why(home: Home) -> None:
    proc, url = home.serve()
    log = home.paths.audit_log
    aside = log.with_name("audit.aside")
    try:
        calls(url, home.token, 1)
        time.sleep(0.5)
        os.replace(log, aside)
        log.mkdir()  # the log's path now cannot be appended to
        deadline = time.monotonic() + 5
        while True:  # the first request may still be accepted: its record is what fails to write
            with RawAgent(url, home.token) as raw:
                reply = raw.post(INIT, session=False).json()
            if "error" in reply and "audit log" in reply["error"]["message"]:
                break
            assert time.monotonic() < deadline, f"requests were not refused: {reply}"
            time.sleep(0.2)
        time.sleep(1.5)  # the gateway publishes its problem once a second
        status = home.tbx("gateway", "status")
        assert status.returncode == 1 and "problem: audit:" in status.stderr, status
        info = Backend(home.paths).gateway_info("local")
        assert info is not None and info.problems and info.problems[0].startswith("audit:")
        # Once the log can be written again, calls work and nothing was lost.
        log.rmdir()
        os.replace(aside, log)
        deadline = time.monotonic() + 5
        while True:
            try:
                calls(url, home.token, 1)
                break
            except AssertionError:
                assert time.monotonic() < deadline, "calls did not work again"
                time.sleep(0.2)
    finally:
        if log.is_dir():
            log.rmdir()
        if aside.exists():
            os.replace(aside, log)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    verify = home.tbx("audit", "verify")
    assert verify.returncode == 0, verify.stderr
    refused = [r for r in home.records() if r["detail"].get("reason") == "audit-unavailable"]
    assert refused, "the refusals themselves were recorded once the log came back"
