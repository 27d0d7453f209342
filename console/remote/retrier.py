"""Keep trying to ship a policy change to toolboxes that were unreachable, until it lands.

A command whose change could not reach a toolbox starts this as a detached process
(``python -m console.remote.retrier``) and hands it, on stdin, only what shipping needs:
each toolbox's id, SSH address, pinned host key, private key and mirror folder. It
never opens the vault. Each round it ships the newest mirror of each toolbox still
pending — whatever later commands wrote — under the same per-toolbox lock commands use,
so an older policy can never be shipped over a newer one. It notes each landing in the
toolbox's ``push.json``; the next command or the console records it in the audit log.
One retrier per toolbox: a second one for a toolbox already being retried exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from console.errors import TbxError
from console.remote.push import Planned, note_failure, over_link, ship
from console.remote.push_state import PushState
from console.remote.ssh import SshError, SshTarget
from console.workspace import Workspace

log = logging.getLogger(__name__)
GIVE_UP_SECONDS = 24 * 3600.0
"""After a day a person has to look (the toolbox list keeps saying the change is pending)."""
BACKOFF = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


def spawn(ws: Workspace, failed: list[Planned]) -> None:
    """Start a detached retrier for these toolboxes (its secrets go over a pipe, not argv
    or the environment)."""
    jobs = [{"id": p.toolbox.id, "name": p.toolbox.name, "target": str(p.target), "key": p.private_key,
             "host_key": p.host_key, "root": str(p.root)} for p in failed]
    log_path = ws.paths.state_dir / "remote" / "retrier.log"
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(log_path, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "console.remote.retrier"], stdin=subprocess.PIPE,
                                stdout=out, stderr=out, start_new_session=True, close_fds=True,
                                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write(json.dumps(jobs).encode())
        proc.stdin.close()


async def retry(job: dict[str, Any], give_up: float = GIVE_UP_SECONDS) -> bool:
    root = Path(job["root"])
    claim = _claim(root)
    if claim is None:
        return False  # another retrier has this toolbox
    try:
        send = over_link(SshTarget.parse(job["target"]), job["key"], job["host_key"])
        deadline = time.monotonic() + give_up
        attempt = 0
        while time.monotonic() < deadline:
            if not PushState.read(root).pending:
                return True
            try:
                await ship(root, job["id"], send, "retrier")
                log.warning("policy landed on %s", job["name"])
                return True
            except (TbxError, SshError, OSError) as exc:
                await asyncio.to_thread(note_failure, root, str(exc))
            await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
            attempt += 1
        log.error("gave up on %s after %.0f s; 'tbx toolbox sync %s' tries again", job["name"], give_up, job["name"])
        return False
    finally:
        os.close(claim)


def _claim(root: Path) -> int | None:
    fd = os.open(root / "retrier.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s retrier %(message)s")
    jobs = json.loads(sys.stdin.read() or "[]")
    asyncio.run(_all(jobs))


async def _all(jobs: list[dict[str, Any]]) -> None:
    await asyncio.gather(*(retry(job) for job in jobs))


if __name__ == "__main__":
    main()
