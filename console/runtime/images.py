"""Turning a catalog entry into a local Docker image: pulled by digest, or built locally.

Both sources go through one path: find the base image (the configured base for package
builds, the digest-pinned image itself for pulls; pulled when missing), fetch any
artifacts into the cache on the host, render a Dockerfile, hash everything that decides
the image's content, and build ``tbx/<entry id>:<hash16>`` with network ``none`` unless
that tag is already there. A pulled image gets the same treatment with a Dockerfile that
only adds labels, so every image tbx runs is labelled and content-addressed alike.

A warm machine (image and download manifest present) touches no network and builds
nothing: the hash is computed from the recorded manifest and the base image's ID.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError, ImageNotFound

from console.catalog.model import CatalogEntry, PackageSource
from console.config import RuntimeSettings
from console.errors import ImageError
from console.runtime.imagecache import Manifest, SpecCache, canonical_digest
from console.runtime.imagedocker import (
    build_context,
    npm_dockerfile,
    pull,
    pulled_dockerfile,
    python_dockerfile,
    run_build,
)
from console.runtime.imagefetch import PROBE_SCRIPT, PythonTarget, npm_fetch, pip_download, summarize

LABEL_MANAGED = "io.tbx.managed"
LABEL_SOURCE = "io.tbx.source"
LABEL_INPUTS = "io.tbx.inputs"
LABEL_ENTRY = "io.tbx.entry"
IMAGE_REPO = "tbx"
LOCK_TIMEOUT = 1800.0
"""Seconds to wait for another process building the same spec (a cold npm or PyPI build
takes a minute or two; a stuck one should not hold everyone forever)."""
RECIPE_FORMAT = 1
"""Bump when the meaning of the hashed inputs changes, so old tags are not reused."""

_PYPI_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_NPM_NAME = re.compile(r"^(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")

Progress = Callable[[str], None]
_BASE_FIX = "pull or load it (tests: scripts/base-image.sh), or set runtime.{setting} in config.toml"


def _quiet(_line: str) -> None:
    return None


@dataclass(frozen=True)
class ImageRecipe:
    """Where an entry's image comes from, as decided by ``runtime.image_source``."""

    source: str
    """``pypi:pkg==ver``, ``npm:pkg@ver`` or the pinned image reference (the image label)."""
    base: str
    """The image the build starts FROM: the configured base, or the pinned image."""
    package: PackageSource | None
    """The package to download and install; None when the image is pulled."""


@dataclass(frozen=True)
class _Plan:
    cache: SpecCache
    dockerfile: str
    tree: str | None
    """The directory of the cache entry that forms the build context (``wheels``, ``app``)."""
    download: Callable[[Path], list[str]] | None
    """Fills a staging directory and returns the artifacts' relative paths; None: nothing to fetch."""


class ImageBuilder:
    """Makes sure the image of a catalog entry exists on one Docker engine."""

    def __init__(self, client: docker.DockerClient, settings: RuntimeSettings, cache_dir: Path) -> None:
        self._client = client
        self._settings = settings
        self._root = cache_dir / "images"

    def recipe(self, entry: CatalogEntry) -> ImageRecipe:
        """Pick pull or build for ``entry`` (``auto``: pull when it names an image)."""
        mode = self._settings.image_source
        source = entry.source
        if mode == "pull" or (mode == "auto" and source.image is not None):
            if source.image is None:
                raise ImageError(
                    f"catalog entry {entry.id} has no image to pull; "
                    'set runtime.image_source to "auto" or "build" in config.toml'
                )
            return ImageRecipe(source=source.image, base=source.image, package=None)
        package = source.package
        if package is None:
            raise ImageError(
                f"catalog entry {entry.id} has no package to build from; "
                'set runtime.image_source to "auto" or "pull" in config.toml'
            )
        if package.kind == "pypi":
            _check_name(package, _PYPI_NAME)
            held = f";{','.join(package.constraints)}" if package.constraints else ""
            return ImageRecipe(f"pypi:{package.package}=={package.version}{held}", self._settings.base_image_python,
                               package)
        _check_name(package, _NPM_NAME)
        return ImageRecipe(f"npm:{package.package}@{package.version}", self._settings.base_image_node, package)

    def ensure(self, entry: CatalogEntry, progress: Progress | None = None) -> str:
        """Return a local image reference for ``entry``, pulling, downloading and
        building only what is missing. ``progress`` receives short human lines."""
        report = progress or _quiet
        recipe = self.recipe(entry)
        base_id = self._base_image(recipe, report)
        plan = self._plan(entry, recipe, base_id, report)
        # Fast path, without the lock: a warm cache names the image without any download.
        manifest = plan.cache.manifest() if plan.download is not None else None
        if plan.download is None or manifest is not None:
            tag, inputs = self._tag(entry, recipe, base_id, plan, manifest)
            if self._present(tag, inputs):
                report(f"{tag} is up to date")
                return tag
        with plan.cache.lock(LOCK_TIMEOUT, report):
            if plan.download is not None:
                manifest = plan.cache.verified() or self._download(plan, recipe, report)
            tag, inputs = self._tag(entry, recipe, base_id, plan, manifest)
            if self._present(tag, inputs):  # built by whoever held the lock before us
                report(f"{tag} is up to date")
                return tag
            self._build(entry, recipe, plan, tag, inputs, report)
        report(f"built {tag}")
        return tag

    def base_image_id(self, ref: str, progress: Progress, fix: str = _BASE_FIX.format(setting="base_image_python")) -> str:
        """The ID of a base image, pulled when missing (the gateway image starts from it too)."""
        image_id = self._image_id(ref)
        if image_id is None:
            progress(f"pulling {ref}")
            pull(self._client, ref, fix, progress)
            image_id = self._image_id(ref)
            if image_id is None:
                raise ImageError(f"{ref} is still missing after pulling it; {fix}")
        return image_id

    def python_target(self, base_id: str, base_ref: str, progress: Progress) -> PythonTarget:
        return self._python_target(base_id, base_ref, progress)

    # -- steps -------------------------------------------------------------------------

    def _base_image(self, recipe: ImageRecipe, report: Progress) -> str:
        """The base image's ID, pulling it first when it is not here."""
        if recipe.package is None:
            fix = "check that its registry is reachable and the digest exists, or docker load the image"
        else:
            fix = _BASE_FIX.format(setting="base_image_python" if recipe.package.kind == "pypi" else "base_image_node")
        return self.base_image_id(recipe.base, report, fix)

    def _plan(self, entry: CatalogEntry, recipe: ImageRecipe, base_id: str, report: Progress) -> _Plan:
        package = recipe.package
        command = entry.command[0]
        if package is None:
            return _Plan(SpecCache(self._root, recipe.source), pulled_dockerfile(base_id), None, None)
        name, version = package.package, package.version
        if package.kind == "pypi":
            target = self._python_target(base_id, recipe.base, report)

            def fetch_wheels(staged: Path) -> list[str]:
                (staged / "wheels").mkdir()
                wheels = pip_download(name, version, target, staged / "wheels", report, package.constraints)
                return [f"wheels/{wheel}" for wheel in wheels]

            return _Plan(
                SpecCache(self._root, recipe.source, variant=target.key),
                python_dockerfile(base_id, name, version, command, package.constraints),
                "wheels",
                fetch_wheels,
            )

        def fetch_npm(staged: Path) -> list[str]:
            return npm_fetch(name, version, staged, report)

        return _Plan(SpecCache(self._root, recipe.source), npm_dockerfile(base_id, name, version, command), "app", fetch_npm)

    def _python_target(self, base_id: str, base_ref: str, report: Progress) -> PythonTarget:
        """The base image's Python, asked once per image ID (a throwaway container with
        network ``none``) and remembered in the cache."""
        path = self._root / "python-targets" / f"{base_id.removeprefix('sha256:')}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            report(f"checking the Python of {base_ref}")
            data = self._probe_python(base_id, base_ref)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, path)
        return PythonTarget.from_probe(data, base_ref)

    def _probe_python(self, base_id: str, base_ref: str) -> dict[str, str]:
        fix = "set runtime.base_image_python to an image with python3 and its venv module"
        container = None
        try:
            # create/start/remove by hand: containers.run(remove=True) leaves the container
            # behind when it cannot even start (no python3 in the image).
            container = self._client.containers.create(
                base_id, entrypoint=["python3", "-c", PROBE_SCRIPT], network_mode="none",
                labels={LABEL_MANAGED: "true"},
            )  # fmt: skip
            container.start()
            status = container.wait(timeout=120).get("StatusCode")
            output = container.logs(stdout=True, stderr=False).decode("utf-8", "replace").strip()
            if status != 0:
                errors = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
                raise ImageError(f"the python3 of base image {base_ref} failed: {summarize(errors)}; {fix}")
        except APIError as exc:
            reason = str(exc.explanation or exc)
            reason = "python3 is not on its PATH" if "executable file not found" in reason else summarize(reason)
            raise ImageError(f"base image {base_ref} cannot run python3: {reason}; {fix}") from None
        except docker.errors.DockerException as exc:
            raise ImageError(f"base image {base_ref} cannot run python3: {summarize(str(exc))}; {fix}") from None
        finally:
            if container is not None:
                with contextlib.suppress(docker.errors.DockerException):
                    container.remove(force=True)
        try:
            data = json.loads(output.splitlines()[-1])
        except (ValueError, IndexError):
            raise ImageError(f"base image {base_ref} answered the Python probe with {output[:100]!r}; {fix}") from None
        return {key: str(value) for key, value in data.items()}

    def _download(self, plan: _Plan, recipe: ImageRecipe, report: Progress) -> Manifest:
        assert plan.download is not None
        with plan.cache.staging() as staged:
            artifacts = plan.download(staged)
            manifest = Manifest.of(recipe.source, staged, artifacts)
            plan.cache.commit(staged, manifest)
        return manifest

    def _tag(
        self, entry: CatalogEntry, recipe: ImageRecipe, base_id: str, plan: _Plan, manifest: Manifest | None
    ) -> tuple[str, str]:
        inputs = canonical_digest(
            {
                "format": RECIPE_FORMAT,
                "base": base_id,
                "source": recipe.source,
                "dockerfile": plan.dockerfile,
                "artifacts": manifest.digest if manifest is not None else None,
            }
        )
        return f"{IMAGE_REPO}/{entry.id}:{inputs[:16]}", inputs

    def _build(self, entry: CatalogEntry, recipe: ImageRecipe, plan: _Plan, tag: str, inputs: str, report: Progress) -> None:
        labels = {LABEL_MANAGED: "true", LABEL_SOURCE: recipe.source, LABEL_INPUTS: inputs, LABEL_ENTRY: entry.id}
        tree = plan.cache.dir / plan.tree if plan.tree is not None else None
        report(f"building {tag} from {recipe.source}")
        with build_context(plan.dockerfile, tree, plan.tree or "", launcher=True) as context:
            run_build(
                self._client, context, tag=tag, labels=labels, report=report,
                what=f"building the image of {entry.id} ({recipe.source}) failed",
                fix=_build_fix(recipe),
            )  # fmt: skip

    def _image_id(self, ref: str) -> str | None:
        try:
            return str(self._client.api.inspect_image(ref)["Id"])
        except ImageNotFound:
            return None
        except APIError as exc:
            raise ImageError(f"cannot inspect image {ref}: {summarize(str(exc.explanation or exc))}; check the engine") from None

    def _present(self, tag: str, inputs: str) -> bool:
        """The tag exists and was built from these inputs (not re-pointed by hand)."""
        try:
            labels = self._client.api.inspect_image(tag).get("Config", {}).get("Labels") or {}
        except ImageNotFound:
            return False
        except APIError as exc:
            raise ImageError(f"cannot inspect image {tag}: {summarize(str(exc.explanation or exc))}; check the engine") from None
        return labels.get(LABEL_INPUTS) == inputs


def _check_name(package: PackageSource, pattern: re.Pattern[str]) -> None:
    # Names end up on pip's and npm's command lines and in a Dockerfile.
    if not pattern.match(package.package):
        raise ImageError(f"bad {package.kind} package name {package.package!r} in the catalog; fix the catalog entry")


def _build_fix(recipe: ImageRecipe) -> str:
    if recipe.package is None:
        return "check that the engine has space left (docker system df)"
    if recipe.package.kind == "pypi":
        return f"check that {recipe.base} has python3 with venv, and that the catalog command is the package's script"
    return f"check that {recipe.base} has node, and that the catalog command is one of the package's bin names"
