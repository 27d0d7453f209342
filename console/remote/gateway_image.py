"""The image of a remote toolbox's gateway, built from this very installation.

The droplet runs the same gateway code as the laptop: the installed ``console`` package
is copied into the build context and its dependencies, pinned to the versions installed
here, are downloaded on this machine as wheels for the base image's Python — the build
itself runs with network ``none``, like every server build. The tag is the hash of all
of that, so an unchanged console never rebuilds and a changed one always does.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker
from docker.errors import ImageNotFound

import console
from console.config import RuntimeSettings
from console.runtime.imagedocker import build_context, run_build
from console.runtime.imagefetch import run_tool
from console.runtime.images import LABEL_MANAGED, ImageBuilder

DIST = "toolbox-console"
SKIPPED = {"textual"}
"""Dependencies the gateway never imports (only the TUI does)."""
LABEL_ROLE = "io.tbx.role"

Progress = Callable[[str], None]


def requirements() -> list[str]:
    """The console's runtime dependencies, pinned to what is installed here."""
    pinned = []
    for requirement in importlib.metadata.requires(DIST) or []:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
        if name.lower() in SKIPPED:
            continue
        pinned.append(f"{name}=={importlib.metadata.version(name)}")
    return sorted(pinned)


def _source_files() -> list[Path]:
    root = Path(console.__file__).parent
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and "tui" not in p.relative_to(root).parts
    )


def source_digest(base_id: str, reqs: list[str]) -> str:
    root = Path(console.__file__).parent
    h = hashlib.sha256(base_id.encode() + b"\0" + "\n".join(reqs).encode() + b"\0")
    for path in _source_files():
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def dockerfile(base_id: str) -> str:
    return f"""\
# tbx: the toolbox gateway
FROM {base_id} AS build
COPY wheels /tbx/wheels
RUN python3 -m venv /opt/tbx/venv \\
 && /opt/tbx/venv/bin/python -m pip install --no-index --find-links /tbx/wheels --only-binary=:all: \\
      --no-cache-dir --disable-pip-version-check --no-warn-script-location -r /tbx/wheels/requirements.txt \\
 && /opt/tbx/venv/bin/python -m pip uninstall --yes --quiet pip \\
 && chmod -R a+rX,go-w /opt/tbx
FROM {base_id}
COPY --from=build /opt/tbx /opt/tbx
COPY src /opt/tbx/src
ENV PATH=/opt/tbx/venv/bin:$PATH PYTHONPATH=/opt/tbx/src PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
RUN python3 -c "import console.gateway.service"
ENTRYPOINT ["python3", "-m", "console"]
"""


def ensure_gateway_image(
    client: docker.DockerClient, settings: RuntimeSettings, cache_dir: Path, progress: Progress
) -> str:
    builder = ImageBuilder(client, settings, cache_dir)
    base_ref = settings.base_image_python
    base_id = builder.base_image_id(base_ref, progress)
    reqs = requirements()
    tag = f"tbx/gateway:{source_digest(base_id, reqs)[:16]}"
    try:
        client.images.get(tag)
        progress(f"{tag} is up to date")
        return tag
    except ImageNotFound:
        pass
    target = builder.python_target(base_id, base_ref, progress)
    wheels = _wheels(cache_dir, target.key, target, reqs, progress)
    with tempfile.TemporaryDirectory(prefix="tbx-gateway-") as tmp:
        context = Path(tmp)
        shutil.copytree(wheels, context / "wheels")
        src = context / "src" / "console"
        root = Path(console.__file__).parent
        for path in _source_files():
            dest = src / path.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        progress(f"building {tag}")
        with build_context(dockerfile(base_id), context, ".") as tar:
            run_build(client, tar, tag=tag, labels={LABEL_MANAGED: "true", LABEL_ROLE: "gateway"},
                      what="building the gateway image", fix="see the build output above; 'tbx doctor' checks the engine",
                      report=progress)
    return tag


def _wheels(cache_dir: Path, key: str, target: object, reqs: list[str], progress: Progress) -> Path:
    """The dependency wheels for the target Python, downloaded once per requirement set."""
    digest = hashlib.sha256("\n".join(reqs).encode()).hexdigest()[:16]
    folder = cache_dir / "images" / "gateway" / f"{key}-{digest}"
    done = folder / "requirements.txt"
    if done.exists():
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="wheels-", dir=cache_dir)).resolve()
    try:
        (staging / "requirements.in").write_text("\n".join(reqs) + "\n")
        progress(f"downloading the gateway's {len(reqs)} dependencies for Python {target.version}")  # type: ignore[attr-defined]
        argv = [sys.executable, "-m", "pip", "download", "--progress-bar", "off", "--only-binary=:all:",
                "--python-version", target.version, "--implementation", target.implementation,  # type: ignore[attr-defined]
                "--dest", str(staging)]
        for platform_tag in target.platforms():  # type: ignore[attr-defined]
            argv += ["--platform", platform_tag]
        argv += ["-r", str(staging / "requirements.in")]
        run_tool(argv, cwd=staging, what="cannot download the gateway's dependencies",
                 fix="check that PyPI is reachable", report=progress)
        (staging / "requirements.in").rename(staging / "requirements.txt")
        folder.parent.mkdir(parents=True, exist_ok=True)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder
