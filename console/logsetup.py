"""Where ``tbx`` writes its log lines: stderr for a command, a file for the console.

A command's log lines (``--debug``, warnings) go to stderr, where a script collects
them. The console is a full-screen app: a line written to the terminal under it draws
over the screen, so the console's log goes to a rotating file in the state folder, which
the console names at start (with ``--debug``), ``tbx --help`` describes and ``tbx
locate`` prints. Tracebacks of failures nobody expected go to the same file, whichever
way ``tbx`` ran, so a one-line error can point at them.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from logging.handlers import RotatingFileHandler
from pathlib import Path

from console.paths import Paths

LOG_NAME = "console.log"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
STDERR_FORMAT = "%(levelname)s %(name)s: %(message)s"
MAX_BYTES = 1024 * 1024
BACKUPS = 3
"""console.log plus console.log.1 to .3: at most 4 MiB, the newest lines always kept."""


def log_file(paths: Paths) -> Path:
    return paths.log_dir / LOG_NAME


def _private_dir(paths: Paths) -> Path:
    for folder in (paths.state_dir, paths.log_dir):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return paths.log_dir


class _PrivateRotatingFile(RotatingFileHandler):
    """Created readable by the user only (like everything else in the state folder)."""

    def _open(self):  # type: ignore[no-untyped-def]  # noqa: ANN202 - the stdlib's signature
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)  # noqa: SIM115 - the handler closes it


def _level(debug: bool) -> int:
    return logging.DEBUG if debug else logging.WARNING


def _terminal(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    return isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler) and \
        stream in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)


def log_to_stderr(debug: bool) -> None:
    """For commands: warnings (and with ``--debug`` everything) on stderr. Like
    ``logging.basicConfig``, nothing changes where logging is set up already (a host
    program, a test runner)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(STDERR_FORMAT))
    root.addHandler(handler)
    root.setLevel(_level(debug))


def log_to_file(paths: Paths, debug: bool) -> Path | None:
    """For the console: every log line, and every Python warning, goes to the rotating
    file; none to the terminal. Returns the file's path (None if its folder cannot be
    made: then nothing is logged, which beats lines drawn over the screen)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if _terminal(h) or isinstance(h, _PrivateRotatingFile)]:
        root.removeHandler(old)
        old.close()
    logging.captureWarnings(True)
    try:
        path = _private_dir(paths) / LOG_NAME
    except OSError:
        root.addHandler(logging.NullHandler())
        return None
    handler = _PrivateRotatingFile(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(_level(debug))
    return path


def record_crash(paths: Paths, what: str, exc: BaseException) -> Path | None:
    """Append ``exc``'s traceback to the log file; its path, or None if it could not be
    written (the caller still reports the error, only without a path)."""
    text = "".join(traceback.format_exception(exc))
    try:
        path = _private_dir(paths) / LOG_NAME
        handler = _PrivateRotatingFile(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True)
        handler.setFormatter(logging.Formatter(FORMAT))
        try:
            handler.handle(logging.LogRecord("tbx", logging.ERROR, __file__, 0, "%s failed unexpectedly:\n%s",
                                             (what, text.rstrip()), None))
        finally:
            handler.close()
    except OSError:
        return None
    return path
