"""Host-side downloads for local image builds: ``pip download`` and ``npm pack``/``install``.

Containers here cannot verify TLS to package registries, and a build with network would
make images depend on whatever the registry serves at build time. So the host fetches
everything into the cache and ``docker build`` runs with network ``none``. For PyPI the
host's pip is told the *container's* Python (version, implementation, glibc, machine) and
takes wheels only, so nothing is compiled and every wheel fits the base image.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from console.errors import ImageError

TOOL_TIMEOUT = 900.0
"""Seconds one pip or npm run may take; a registry that stops answering must not hang tbx."""

PROBE_SCRIPT = (
    "import json, platform, sys; libc, ver = platform.libc_ver(); "
    "print(json.dumps({'version': '%d.%d' % sys.version_info[:2], "
    "'implementation': sys.implementation.name, 'machine': platform.machine(), "
    "'libc': libc, 'libc_version': ver}))"
)
"""Run by the base image's python3 to learn which wheels fit it."""

_IMPLEMENTATIONS = {"cpython": "cp", "pypy": "pp"}
_OLDEST_GLIBC_MINOR = 17  # manylinux2014, the oldest tag still published in practice
_CREDENTIALS = re.compile(r"(://)[^/\s:@]+(:[^/\s@]*)?@")
_NOISE = re.compile(r"^(npm (warn|notice)|WARNING:|npm error A complete log|npm error (code|errno) )", re.IGNORECASE)


@dataclass(frozen=True)
class PythonTarget:
    """The Python inside a base image, as pip's ``--python-version/--platform`` see it."""

    version: str
    implementation: str
    machine: str
    glibc: tuple[int, int]

    @classmethod
    def from_probe(cls, data: dict[str, str], image: str) -> PythonTarget:
        implementation = _IMPLEMENTATIONS.get(data.get("implementation", ""))
        match = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)*", data.get("libc_version", ""))
        if implementation is None or data.get("libc") != "glibc" or match is None:
            raise ImageError(
                f"base image {image} has {data.get('implementation')} on {data.get('libc') or 'an unknown libc'}; "
                f"PyPI builds need CPython or PyPy on glibc (a Debian or Ubuntu based image)"
            )
        return cls(data["version"], implementation, data["machine"], (int(match[1]), int(match[2])))

    @property
    def key(self) -> str:
        return f"{self.implementation}{self.version.replace('.', '')}-{self.machine}-glibc{self.glibc[0]}.{self.glibc[1]}"

    def platforms(self) -> list[str]:
        """Every manylinux tag this glibc accepts, newest first (pip does not widen
        ``manylinux_2_X`` by itself)."""
        major, minor = self.glibc
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, _OLDEST_GLIBC_MINOR - 1, -1)]
        if minor >= 17:
            tags.append(f"manylinux2014_{self.machine}")
        if self.machine in ("x86_64", "i686"):
            tags += [f"manylinux2010_{self.machine}", f"manylinux1_{self.machine}"]
        return tags


def redact(text: str) -> str:
    """Drop credentials from URLs (``https://user:token@index``) in tool output."""
    return _CREDENTIALS.sub(r"\1***@", text)


def summarize(output: str) -> str:
    """The line of a tool's output that says what went wrong: the last error line if
    there is one, else the last line that is not a warning or a pointer to a log."""
    lines = [line.strip() for line in redact(output).splitlines() if line.strip()]
    useful = [line for line in lines if not _NOISE.match(line)] or lines
    errors = [line for line in useful if re.match(r"^(ERROR|npm error|error)\b", line, re.IGNORECASE)]
    if errors and errors[0].lower().startswith("npm error"):
        # npm puts the cause first and its advice after it.
        pick = errors[0]
    else:
        pick = errors[-1] if errors else (useful[-1] if useful else "no output")
    pick = re.sub(r"^(ERROR:|npm error)\s*", "", pick, flags=re.IGNORECASE) if errors else pick
    return pick[:300]


def run_tool(
    argv: list[str],
    *,
    cwd: Path,
    what: str,
    fix: str,
    report: Callable[[str], None],
    forward: Callable[[str], str | None] = lambda _line: None,
) -> str:
    """Run a host tool, passing the lines ``forward`` picks to ``report``; return its
    output, or raise ``ImageError`` naming ``what`` failed, the tool's own reason and ``fix``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace",
        )  # fmt: skip
    except OSError as exc:
        raise ImageError(f"{what}: cannot run {argv[0]} ({exc.strerror}); {fix}") from None
    timer = threading.Timer(TOOL_TIMEOUT, proc.kill)
    timer.start()
    tail: deque[str] = deque(maxlen=200)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line)
            shown = forward(line.strip())
            if shown:
                report(redact(shown))
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = "".join(tail)
    if code != 0:
        reason = "timed out" if code == -9 else summarize(output)
        raise ImageError(f"{what}: {reason}; {fix}")
    return output


def pip_download(
    package: str,
    version: str,
    target: PythonTarget,
    dest: Path,
    report: Callable[[str], None],
    constraints: list[str] | None = None,
) -> list[str]:
    """Download ``package==version`` (held to ``constraints``) and its dependencies as
    wheels for ``target`` into ``dest``; return the wheel file names."""
    if importlib.util.find_spec("pip") is None:
        raise ImageError(
            "pip is not installed next to tbx, so PyPI servers cannot be downloaded; "
            f"run: {sys.executable} -m ensurepip, or set runtime.image_source = \"pull\""
        )
    spec = f"{package}=={version}"
    report(f"downloading {spec} for Python {target.version} ({target.machine})")
    argv = [
        sys.executable, "-m", "pip", "download", "--progress-bar", "off",
        "--only-binary=:all:", "--python-version", target.version,
        "--implementation", target.implementation, "--dest", str(dest),
    ]  # fmt: skip
    for platform_tag in target.platforms():
        argv += ["--platform", platform_tag]
    argv += ["--", spec, *(constraints or [])]
    run_tool(
        argv, cwd=dest, what=f"cannot download {spec} from PyPI",
        fix=f"check the name and version (pip index versions {package}) and that PyPI is reachable",
        report=report, forward=_pip_progress,
    )  # fmt: skip
    wheels = sorted(path.name for path in dest.glob("*.whl"))
    if not wheels:
        raise ImageError(f"pip downloaded no wheels for {spec}; check the package publishes wheels")
    report(f"downloaded {len(wheels)} wheels for {spec}")
    return wheels


def _pip_progress(line: str) -> str | None:
    # "Collecting mcp<3,>=2.3 (from mcp-server-time==...)" -> "fetching mcp<3,>=2.3"
    if line.startswith("Collecting "):
        return "fetching " + line.split()[1]
    return None


def npm_fetch(package: str, version: str, dest: Path, report: Callable[[str], None]) -> list[str]:
    """``npm pack`` the package into ``dest/package.tgz`` and install it with its
    production dependencies into ``dest/app``; return the artifacts' relative paths: the
    tarball, the package-lock that pins the dependency tree, and npm's record of the tree
    it installed (so a cache entry whose node_modules went missing is not trusted)."""
    npm = shutil.which("npm")
    if npm is None:
        raise ImageError(
            "npm is not installed on this machine, so npm servers cannot be downloaded; "
            "install Node.js and npm (apt-get install npm), or set runtime.image_source = \"pull\""
        )
    spec = f"{package}@{version}"
    quiet = ["--no-audit", "--no-fund", "--no-update-notifier"]
    report(f"downloading {spec}")
    pack = run_tool(
        [npm, "pack", spec, "--json", "--pack-destination", str(dest), *quiet],
        cwd=dest, what=f"cannot download {spec} from npm",
        fix=f"check the name and version (npm view {package} versions) and that npm's registry is reachable",
        report=report,
    )  # fmt: skip
    tarballs = list(dest.glob("*.tgz"))
    if len(tarballs) != 1:
        raise ImageError(f"npm pack {spec} left {len(tarballs)} tarballs; output ended: {summarize(pack)}")
    tarball = tarballs[0].rename(dest / "package.tgz")
    app = dest / "app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "tbx-server", "version": "0.0.0", "private": True}) + "\n")
    report(f"installing the dependencies of {spec}")
    run_tool(
        [npm, "install", "--omit=dev", "--ignore-scripts", "--package-lock", *quiet,
         f"file:../{tarball.name}"],
        cwd=app, what=f"cannot install the dependencies of {spec}",
        fix="check that npm's registry is reachable and the package's dependencies exist",
        report=report, forward=lambda line: line if line.startswith("added ") else None,
    )  # fmt: skip
    artifacts = [tarball.name, "app/package-lock.json", "app/node_modules/.package-lock.json"]
    missing = [name for name in artifacts if not (dest / name).is_file()]
    if missing:
        raise ImageError(f"npm install of {spec} wrote no {missing[0]}; check the npm configuration (package-lock=false?)")
    return artifacts
