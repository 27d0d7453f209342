"""Ask npm and PyPI what a package's current version is and what executables it installs.

Imports pin every package to an exact version (builds are cached by content), so an
unpinned ``npx pkg`` or ``uvx pkg`` is resolved here, once, at planning time. npm is
asked through the ``npm`` client so the user's registry configuration applies; PyPI
through its JSON API. Every call has a timeout; failures are ``RegistryError``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from console.errors import TbxError

EXACT_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
EXACT_PEP440 = re.compile(r"^[0-9][0-9A-Za-z.+!-]*$")
PYPI_JSON = "https://pypi.org/pypi/{name}/json"


class RegistryError(TbxError):
    """A package registry did not answer, or does not know the package or version."""


class Registry:
    """npm and PyPI look-ups with a per-call timeout, memoised for one planning run."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._cache: dict[tuple[str, ...], Any] = {}

    # -- npm -------------------------------------------------------------------------

    def npm_version(self, package: str, spec: str | None) -> str:
        """The exact version npx would run for ``package@spec`` (latest when ``spec`` is None)."""
        value = self._npm_view(f"{package}@{spec}" if spec else package, "version")
        versions = value if isinstance(value, list) else [value]
        if not versions or not isinstance(versions[-1], str):
            raise RegistryError(f"npm has no version of {package} matching {spec or 'latest'!r}")
        # For a range npm lists every match in ascending order; npx takes the highest.
        return versions[-1]

    def npm_bins(self, package: str, version: str) -> dict[str, str]:
        value = self._npm_view(f"{package}@{version}", "bin")
        if value is None:
            return {}
        if isinstance(value, str):  # "bin": "./cli.js" means one executable named after the package
            return {package.rsplit("/", 1)[-1]: value}
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        raise RegistryError(f"npm gave an unexpected 'bin' for {package}@{version}: {value!r}")

    def _npm_view(self, spec: str, field: str) -> Any:
        key = ("npm", spec, field)
        if key in self._cache:
            return self._cache[key]
        npm = shutil.which("npm")
        if npm is None:
            raise RegistryError("npm is not installed; install Node.js to import npx servers")
        try:
            done = subprocess.run(
                [npm, "view", spec, field, "--json"],
                capture_output=True, text=True, timeout=self.timeout, check=False,
            )
        except subprocess.TimeoutExpired:
            raise RegistryError(f"npm did not answer about {spec} within {self.timeout:.0f}s") from None
        if done.returncode != 0:
            reason = _npm_error(done.stdout) or _last_line(done.stderr) or f"exit code {done.returncode}"
            raise RegistryError(f"npm cannot find {spec}: {reason}")
        text = done.stdout.strip()
        if not text:
            # npm prints nothing when the package exists but no version matches the range.
            raise RegistryError(f"npm has no version matching {spec}")
        value = json.loads(text)
        self._cache[key] = value
        return value

    # -- PyPI ------------------------------------------------------------------------

    def pypi_version(self, package: str, version: str | None) -> str:
        """``version`` checked to exist on PyPI, or the current release when None."""
        data = self._pypi_json(package)
        if version is None:
            latest = data.get("info", {}).get("version")
            if not isinstance(latest, str):
                raise RegistryError(f"PyPI lists no current version of {package}")
            return latest
        if version not in data.get("releases", {}):
            raise RegistryError(f"PyPI has no version {version} of {package}")
        return version

    def _pypi_json(self, package: str) -> dict[str, Any]:
        key = ("pypi", package)
        if key in self._cache:
            return self._cache[key]
        url = PYPI_JSON.format(name=urllib.parse.quote(package, safe=""))
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise RegistryError(f"PyPI has no package named {package}") from None
            raise RegistryError(f"PyPI answered {exc.code} for {package}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryError(f"cannot reach PyPI for {package}: {reason}") from None
        self._cache[key] = data
        return data


def _npm_error(stdout: str) -> str:
    """npm --json reports failures as {"error": {"code", "summary"}} on stdout."""
    try:
        error = json.loads(stdout).get("error", {})
    except (ValueError, AttributeError):
        return ""
    summary = str(error.get("summary") or "").strip().splitlines()
    return summary[0] if summary else str(error.get("code") or "")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip() and "npm warn" not in line]
    return lines[-1].strip() if lines else ""
