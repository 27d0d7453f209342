"""A real OpenSSH server (Debian's /usr/sbin/sshd) on a loopback address, for SSH tests.

Each instance has its own work directory holding its config, ed25519 host key,
authorized_keys, pid file and log, and listens on ``host:port`` — any 127.0.0.N works,
so one test can run several "droplets" side by side. It logs in as root (the test
process is root), which is what a fresh droplet offers.

Failure modes tests need are methods: ``drop_connections`` kills the per-connection
sshd processes (the link drops, the listener stays), ``freeze_connections`` stops them
(the link goes silent, only keepalives can tell), ``rotate_host_key`` is a rebuilt host.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import console.remote  # noqa: F401 - before asyncssh: its DSA warning filter (benches import this)
import asyncssh

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc (no psutil needed)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: fields follow the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _descendants(pid: int) -> list[int]:
    result, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            result.append(child)
            todo.append(child)
    return result


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


class Sshd:
    """One sshd listener. Use as a context manager, or call ``start`` and ``stop``."""

    def __init__(
        self,
        authorized_keys: list[str],
        host: str = "127.0.0.1",
        port: int | None = None,
        workdir: Path | None = None,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="tbx-sshd-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port(host)
        self.user = "root"
        self.authorized_keys_file = self.workdir / "authorized_keys"
        self.authorized_keys_file.write_text("".join(line.strip() + "\n" for line in authorized_keys))
        self.host_key_file = self.workdir / "ssh_host_ed25519_key"
        self.config_file = self.workdir / "sshd_config"
        self.log_file = self.workdir / "sshd.log"
        self.host_key_line = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._new_host_key()

    @property
    def target(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    def _new_host_key(self) -> None:
        key = asyncssh.generate_private_key("ssh-ed25519", comment=f"sshd@{self.host}")
        self.host_key_file.unlink(missing_ok=True)
        fd = os.open(self.host_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key.export_private_key("openssh"))
        self.host_key_line = key.export_public_key("openssh").decode("ascii").strip()

    def _write_config(self) -> None:
        self.config_file.write_text(
            "\n".join(
                [
                    f"ListenAddress {self.host}:{self.port}",
                    f"HostKey {self.host_key_file}",
                    f"AuthorizedKeysFile {self.authorized_keys_file}",
                    f"PidFile {self.workdir / 'sshd.pid'}",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "UseDNS no",
                    "PrintMotd no",
                    "AllowStreamLocalForwarding yes",
                    "AllowTcpForwarding yes",
                    "Subsystem sftp internal-sftp",
                    "ClientAliveInterval 5",
                    "ClientAliveCountMax 3",
                    "LoginGraceTime 10",
                    "MaxStartups 50",
                    "LogLevel INFO",
                    "",
                ]
            )
        )

    def start(self, timeout: float = 10.0) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        # sshd refuses to start without its privilege separation directory.
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        self._write_config()
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self._proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self._proc.returncode}: {self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.5):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sshd did not listen on {self.host}:{self.port}: {self.log_tail()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the listener and every session it serves (a host going away)."""
        if self._proc is None:
            return
        doomed = _descendants(self._proc.pid)
        _signal_all(doomed, signal.SIGKILL)
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def rotate_host_key(self) -> None:
        """A rebuilt host: a new host key behind the same address."""
        self._new_host_key()
        self.restart()

    def session_pids(self) -> list[int]:
        return _descendants(self._proc.pid) if self._proc is not None else []

    def drop_connections(self) -> None:
        """Kill every per-connection sshd, keep the listener: clients see the link drop."""
        _signal_all(self.session_pids(), signal.SIGKILL)

    def freeze_connections(self) -> list[int]:
        """Stop every per-connection sshd: the TCP link stays open but nothing answers."""
        pids = self.session_pids()
        _signal_all(pids, signal.SIGSTOP)
        return pids

    def kill(self, pids: list[int]) -> None:
        _signal_all(pids, signal.SIGKILL)
        _signal_all(pids, signal.SIGCONT)

    def add_authorized_key(self, line: str) -> None:
        # sshd reads the file on every login: no restart needed.
        with open(self.authorized_keys_file, "a") as out:
            out.write(line.strip() + "\n")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return " | ".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def close(self) -> None:
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Sshd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
