"""The download cache of image builds: one directory per package spec, its manifest, a lock.

A spec's directory appears whole or not at all: downloads go to a temporary sibling that
is renamed into place after its manifest is written, so a killed download never looks
like a cached one. The manifest lists every artifact with its SHA-256; its digest is what
the image's content hash covers, which lets a warm machine name the image it needs
without downloading or re-hashing anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from console.errors import ImageError
from console.filelock import held

MANIFEST = "manifest.json"
FORMAT = 2
_TMP_MARK = ".tmp-"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def canonical_digest(value: object) -> str:
    """SHA-256 of the canonical JSON of ``value`` (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """What a cached download holds: artifact paths (relative to the spec directory)
    with their SHA-256, for the spec it was made for."""

    spec: str
    files: dict[str, str]

    @property
    def digest(self) -> str:
        return canonical_digest({"spec": self.spec, "files": self.files})

    @classmethod
    def of(cls, spec: str, root: Path, relative: list[str]) -> Manifest:
        return cls(spec, {name: sha256_file(root / name) for name in sorted(relative)})


class SpecCache:
    """The cache directory of one package spec (``pypi:pkg==1.0`` built for one Python
    target, or ``npm:pkg@1.0``), plus the lock that serialises its builders."""

    def __init__(self, root: Path, spec: str, variant: str = "") -> None:
        self.spec = spec
        key = hashlib.sha256(f"{spec}\0{variant}".encode()).hexdigest()[:12]
        name = f"{_UNSAFE.sub('_', spec)[:80]}-{key}"
        self.dir = root / "specs" / name
        self.lock_file = root / "locks" / f"{name}.lock"

    def manifest(self) -> Manifest | None:
        """The recorded manifest, or None when there is none or it is unreadable."""
        try:
            data = json.loads((self.dir / MANIFEST).read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or data.get("spec") != self.spec:
                return None
            files = data["files"]
            if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
                return None
            return Manifest(self.spec, dict(files))
        except (OSError, ValueError, KeyError, AttributeError):
            return None

    def verified(self) -> Manifest | None:
        """The manifest, only if every artifact it lists is there with its recorded hash."""
        manifest = self.manifest()
        if manifest is None:
            return None
        for name, expected in manifest.files.items():
            path = self.dir / name
            if not path.is_file() or sha256_file(path) != expected:
                return None
        return manifest

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh temporary directory to download into; ``commit`` makes it the cache entry.

        Call while holding ``lock()``. Anything left from a writer that died is removed.
        """
        self.dir.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        for stray in self.dir.parent.glob(self.dir.name + _TMP_MARK + "*"):
            shutil.rmtree(stray, ignore_errors=True)
        tmp = self.dir.with_name(f"{self.dir.name}{_TMP_MARK}{os.getpid()}")
        tmp.mkdir(mode=0o700)
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def commit(self, staged: Path, manifest: Manifest) -> None:
        """Write the manifest into ``staged`` and swap it in for the current entry."""
        (staged / MANIFEST).write_text(
            json.dumps({"format": FORMAT, "spec": manifest.spec, "files": manifest.files}, indent=1, sort_keys=True),
            encoding="utf-8",
        )
        if self.dir.exists():
            # A rename is atomic but cannot replace a non-empty directory: move the old
            # entry aside first (readers then see no entry, which only means "download").
            old = self.dir.with_name(f"{self.dir.name}{_TMP_MARK}old-{os.getpid()}")
            os.replace(self.dir, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(staged, self.dir)

    def lock(self, timeout: float, report: Callable[[str], None]) -> AbstractContextManager[None]:
        """Hold this spec's lock across processes, waiting up to ``timeout`` seconds."""
        self.lock_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

        def too_long(holder: str) -> ImageError:
            return ImageError(
                f"another tbx process (pid {holder}) has been building {self.spec} for over {timeout:g}s; "
                f"wait for it, or stop it (lock: {self.lock_file})"
            )

        return held(self.lock_file, timeout, too_long, lambda: report(f"waiting for another build of {self.spec}"))
