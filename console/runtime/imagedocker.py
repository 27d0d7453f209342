"""The Docker side of image builds: Dockerfiles, the build context, build and pull streams.

Builds use the Engine API's classic builder with network ``none``: everything a build
needs is in its context (downloaded on the host beforehand) or in the base image. The
Dockerfiles are multi-stage so the downloaded wheels and the build's own scratch never
reach a layer of the final image, and they name the base by image ID so what was hashed
is exactly what gets built.
"""

from __future__ import annotations

import hashlib
import io
import re
import shlex
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import docker
from docker.errors import APIError, ImageNotFound

from console.errors import ImageError
from console.runtime.egress_container import SCRIPTS as EGRESS_SCRIPTS
from console.runtime.handover import LAUNCHER_DIR, LAUNCHER_TEXT
from console.runtime.imagefetch import redact

BUILD_TIMEOUT = 1800
"""Seconds the Engine API may stay silent during a build before the client gives up."""

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_STEP_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # the builder colours a step's stderr
_SHORT_ID = re.compile(r"sha256:([0-9a-f]{12})[0-9a-f]{52}")


_LAUNCHER_FILES = {"launch": LAUNCHER_TEXT, **EGRESS_SCRIPTS}
_LAUNCHER_DIGEST = hashlib.sha256(b"".join(hashlib.sha256(text).digest() for text in _LAUNCHER_FILES.values()))
_LAUNCHER_STEP = (f"# the secrets launcher and the egress forwarder, sha256 {_LAUNCHER_DIGEST.hexdigest()[:16]}\n"
                  f"COPY tbx-launch {LAUNCHER_DIR}")
"""Every server image carries the launcher (handover.py) and the egress wrapper and
forwarder (egress_container.py); their digest in the text makes a changed one a new image."""


def python_dockerfile(base_id: str, package: str, version: str, command: str,
                      constraints: list[str] | None = None) -> str:
    requirement = " ".join(shlex.quote(r) for r in [f"{package}=={version}", *(constraints or [])])
    return f"""\
# tbx: pypi:{package}=={version}
FROM {base_id} AS build
COPY wheels /tbx/wheels
RUN python3 -m venv /opt/tbx/venv \\
 && /opt/tbx/venv/bin/python -m pip install --no-index --find-links /tbx/wheels --only-binary=:all: \\
      --no-cache-dir --disable-pip-version-check --no-warn-script-location {requirement} \\
 && /opt/tbx/venv/bin/python -m pip uninstall --yes --quiet pip \\
 && chmod -R a+rX,go-w /opt/tbx
FROM {base_id}
COPY --from=build /opt/tbx /opt/tbx
{_LAUNCHER_STEP}
ENV PATH=/opt/tbx/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
{_command_check(command)}"""


def npm_dockerfile(base_id: str, package: str, version: str, command: str) -> str:
    return f"""\
# tbx: npm:{package}@{version}
FROM {base_id} AS build
COPY app /opt/tbx/app
RUN node --version >/dev/null \\
 && chmod -R a+rX,go-w /opt/tbx \\
 && if [ -d /opt/tbx/app/node_modules/.bin ]; then \\
      find -L /opt/tbx/app/node_modules/.bin -type f -exec chmod a+rx {{}} + ; fi
FROM {base_id}
COPY --from=build /opt/tbx /opt/tbx
{_LAUNCHER_STEP}
ENV PATH=/opt/tbx/app/node_modules/.bin:$PATH NODE_ENV=production HOME=/tmp
{_command_check(command)}"""


def pulled_dockerfile(base_id: str) -> str:
    # Labels (added through the API) and the launcher: the pulled image is used as it is.
    return f"FROM {base_id}\n{_LAUNCHER_STEP}\n"


def _command_check(command: str) -> str:
    # Fails the build, not the first start, when the catalog names a missing executable.
    if _CONTROL.search(command):
        # A newline would end the RUN line and start a Dockerfile instruction of its own.
        raise ImageError(f"the catalog command {command!r} contains control characters; fix the catalog entry")
    says = shlex.quote(f"{command} is not on PATH in this image")
    return f"RUN command -v {shlex.quote(command)} >/dev/null || {{ echo {says} >&2; exit 1; }}\n"


def build_context(dockerfile: str, tree: Path | None, arcname: str, launcher: bool = False) -> IO[bytes]:
    """A tar of the Dockerfile and ``tree`` (as ``arcname``), and of the secrets launcher
    for a server image, owned by root and readable by everyone: servers run as an
    unprivileged user on a read-only root file system."""
    spool: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller
    with tarfile.open(fileobj=spool, mode="w") as tar:
        data = dockerfile.encode("utf-8")
        info = tarfile.TarInfo("Dockerfile")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
        if launcher:
            for name, text in _LAUNCHER_FILES.items():
                script = tarfile.TarInfo(f"tbx-launch/{name}")
                script.size, script.mode = len(text), 0o644
                tar.addfile(script, io.BytesIO(text))
        if tree is not None:
            tar.add(tree, arcname=arcname, filter=_world_readable)
    spool.seek(0)
    return spool


def _world_readable(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if info.isdir() or (info.isfile() and info.mode & 0o111):
        info.mode = 0o755
    elif info.isfile():
        info.mode = 0o644
    return info


def run_build(
    client: docker.DockerClient,
    context: IO[bytes],
    *,
    tag: str,
    labels: dict[str, str],
    what: str,
    fix: str,
    report: Callable[[str], None],
) -> str:
    """Build and tag; return the image ID. On failure raise ``ImageError`` with the step
    and its last output line, after removing the untagged images the build left."""
    seen: list[str] = []
    step = ""
    tail: list[str] = []
    image_id: str | None = None
    error: str | None = None
    try:
        stream = client.api.build(
            fileobj=context, custom_context=True, tag=tag, labels=labels, network_mode="none",
            rm=True, forcerm=True, pull=False, decode=True, timeout=BUILD_TIMEOUT,
        )  # fmt: skip
        for event in stream:
            if "error" in event:
                error = str(event.get("errorDetail", {}).get("message") or event["error"])
                break
            if "aux" in event and isinstance(event["aux"], dict):
                image_id = event["aux"].get("ID", image_id)
            for line in _ANSI.sub("", str(event.get("stream", ""))).splitlines():
                step, tail = _follow(line, step, tail, seen, report)
    except APIError as exc:
        error = str(exc.explanation or exc)
    except docker.errors.DockerException as exc:  # connection dropped, read timed out
        error = str(exc)
    if error is None and image_id is None:
        error = "the engine ended the build without an image"
    if error is not None:
        remove_untagged(client, seen)
        cause = tail[-1] if tail else error
        where = f" at step {step}" if step else ""
        raise ImageError(redact(f"{what}{where}: {cause.strip()[:300]}; {fix}"))
    assert image_id is not None
    final = image_id.removeprefix("sha256:")
    remove_untagged(client, [i for i in seen if not final.startswith(i)])
    return image_id


def _follow(
    line: str, step: str, tail: list[str], seen: list[str], report: Callable[[str], None]
) -> tuple[str, list[str]]:
    """Track the build's current step, its output, and the images it commits."""
    match = _STEP.match(line)
    if match:
        instruction = _SHORT_ID.sub(r"\1", match[3])
        instruction = instruction if len(instruction) <= 60 else instruction[:59] + "…"
        report(redact(f"building step {match[1]}/{match[2]}: {instruction}"))
        return f"{match[1]}/{match[2]} ({instruction})", []
    image = _STEP_IMAGE.match(line)
    if image:
        seen.append(image[1])
        return step, tail
    text = line.strip()
    if text and not text.startswith(("---> ", "Removing intermediate container", "Successfully")):
        tail = [*tail[-19:], text]
    return step, tail


def remove_untagged(client: docker.DockerClient, image_ids: Iterable[str]) -> None:
    """Remove the untagged images a build committed (a failed build's steps, the build
    stage of a finished one). Tagged images, pulled ones and anything another image
    still builds on are left alone."""
    for image_id in reversed(list(image_ids)):
        try:
            attrs = client.api.inspect_image(image_id)
            if attrs.get("RepoTags") or attrs.get("RepoDigests"):
                continue
            client.api.remove_image(image_id, force=False, noprune=False)
        except (ImageNotFound, APIError):
            continue  # already gone, or a parent of something that stays


def pull(client: docker.DockerClient, ref: str, fix: str, report: Callable[[str], None]) -> None:
    """Pull ``ref``, reporting each layer's changes of state (not every progress tick);
    a failure raises ``ImageError`` with the registry's reason and ``fix``."""
    last: dict[str, str] = {}
    try:
        for event in client.api.pull(ref, stream=True, decode=True):
            if "error" in event:
                raise ImageError(_pull_failed(ref, fix, str(event.get("errorDetail", {}).get("message") or event["error"])))
            _pull_progress(event, last, report)
    except APIError as exc:
        raise ImageError(_pull_failed(ref, fix, str(exc.explanation or exc))) from None
    except docker.errors.DockerException as exc:
        raise ImageError(_pull_failed(ref, fix, str(exc))) from None


def _pull_progress(event: dict[str, Any], last: dict[str, str], report: Callable[[str], None]) -> None:
    status = str(event.get("status", ""))
    layer = str(event.get("id", ""))
    if not status:
        return
    if layer and re.fullmatch(r"[0-9a-f]{12}", layer):
        if last.get(layer) != status:
            last[layer] = status
            report(f"pulling layer {layer}: {status.lower()}")
    elif status.startswith(("Digest:", "Status:")) or layer:
        report(redact(f"pull: {status}"))


def _pull_failed(ref: str, fix: str, reason: str) -> str:
    first = reason.strip().splitlines()[0] if reason.strip() else "no reason given"
    return redact(f"cannot pull {ref}: {first[:300]}; {fix}")
