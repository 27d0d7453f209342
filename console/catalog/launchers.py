"""Read a desktop client's ``command`` + ``args`` as "run package P (version V) with these args".

Only package launchers can become catalog entries: ``npx`` (npm) and ``uvx`` /
``uv tool run`` / ``pipx run`` (PyPI). Everything else (docker, local scripts, local
executables) is refused with a one-line reason the import plan shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath
from typing import Literal

from console.catalog.registry import EXACT_PEP440, EXACT_SEMVER

NPM_NAME = re.compile(r"^(?:@[a-z0-9-~][a-z0-9-._~]*/)?[a-z0-9-~][a-z0-9-._~]*$")
PYPI_REQ = re.compile(r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(?P<extras>\[[^\]]*\])?(?P<rest>.*)$")

# uvx options that take a value; the rest of its options are flags.
UVX_VALUE_OPTIONS = {"--from", "--with", "--with-editable", "--with-requirements", "--python", "-p",
                     "--index", "--index-url", "--default-index", "--extra-index-url", "-i", "--find-links",
                     "-f", "--cache-dir", "--directory", "--project", "--env-file", "--constraints", "-c",
                     "--overrides", "--build-constraints", "-b", "--config-file", "--color"}
UVX_REFUSED = {"--with": "needs extra packages (--with)", "--with-editable": "needs a local editable package",
               "--with-requirements": "needs a requirements file",
               "--index": "installs from a custom package index", "--index-url": "installs from a custom package index",
               "--default-index": "installs from a custom package index", "-i": "installs from a custom package index",
               "--extra-index-url": "installs from an extra package index", "--find-links": "installs local packages",
               "-f": "installs local packages", "--directory": "runs inside a local project directory",
               "--project": "runs inside a local project"}
SCRIPT_RUNNERS = {"node", "python", "python3", "deno", "bun", "ts-node", "tsx", "java", "ruby", "php", "go"}
CONTAINER_RUNNERS = {"docker", "podman", "nerdctl"}


class Unsupported(Exception):
    """The command is not a published package tbx can build; ``str()`` is the reason."""


@dataclass
class Launch:
    """A package launch as the desktop client would have done it."""

    kind: Literal["npm", "pypi"]
    package: str
    spec: str | None
    """The version as written (``1.2.3``, ``latest``, ``^1.2``); None when unpinned."""
    exact: bool
    executable: str | None
    """The executable named explicitly (``npx -p pkg cmd``, ``uvx --from pkg cmd``); None: derive it."""
    args: list[str]
    launcher: str
    notes: list[str] = field(default_factory=list)


def executable_name(command: str) -> str:
    """``/usr/local/bin/npx`` and ``C:\\...\\npx.cmd`` are still npx."""
    name = PureWindowsPath(command).name if "\\" in command else PurePosixPath(command).name
    for suffix in (".cmd", ".exe", ".bat", ".ps1"):
        name = name.removesuffix(suffix)
    return name.lower()


def parse_launch(command: str, args: list[str]) -> Launch:
    name = executable_name(command)
    # Windows configs wrap npx in the shell: "command": "cmd", "args": ["/c", "npx", ...].
    if name == "cmd" and args and args[0].lower() in ("/c", "/k") and len(args) > 1:
        return parse_launch(args[1], args[2:])
    if name == "npx":
        return _npx(args)
    if name == "uvx":
        return _uvx(args, "uvx")
    if name == "uv" and args[:2] == ["tool", "run"]:
        return _uvx(args[2:], "uv tool run")
    if name == "pipx" and args[:1] == ["run"]:
        return _pipx(args[1:])
    if name in CONTAINER_RUNNERS:
        raise Unsupported(f"starts its own container with {name}; add it to catalog.json with an image pinned by digest")
    if name == "uv":
        raise Unsupported("'uv run' runs a local project, not a published package; publish it or use 'uvx PACKAGE'")
    if name in SCRIPT_RUNNERS or name.startswith("python3."):
        target = next((a for a in args if not a.startswith("-")), "")
        if name.startswith("python") and "-m" in args:
            raise Unsupported("runs a local Python module (python -m); if it is on PyPI, use 'uvx PACKAGE' and import again")
        raise Unsupported(f"runs a local script ({name} {target}); tbx builds servers only from npm or PyPI packages")
    if command.startswith(("/", "~", ".")) or "\\" in command:
        raise Unsupported(f"runs a local executable ({command}); tbx builds servers only from npm or PyPI packages")
    raise Unsupported(f"unknown launcher {command!r}: tbx imports npx, uvx, 'uv tool run' and 'pipx run' commands")


def _npx(args: list[str]) -> Launch:
    notes: list[str] = []
    packages: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-y", "--yes", "-q", "--quiet", "--no-install", "--prefer-online", "--prefer-offline"):
            i += 1
        elif arg in ("-p", "--package"):
            if i + 1 >= len(args):
                raise Unsupported(f"npx {arg} has no package after it")
            packages.append(args[i + 1])
            i += 2
        elif arg.startswith("--package="):
            packages.append(arg.split("=", 1)[1])
            i += 1
        elif arg in ("-c", "--call") or arg.startswith("--call="):
            raise Unsupported("npx -c runs a shell command line; name the package and its arguments instead")
        elif arg.startswith("--registry"):
            raise Unsupported("installs from a custom npm registry; tbx resolves packages on the public registry")
        elif arg == "--":
            i += 1
            break
        elif arg.startswith("-"):
            notes.append(f"npx option {arg} dropped")
            i += 1
        else:
            break
    rest = args[i:]
    if len(packages) > 1:
        raise Unsupported("npx installs several packages (-p ... -p ...); a server is built from one")
    if packages:
        if not rest:
            raise Unsupported("npx -p names a package but no command to run")
        spec, executable, rest = packages[0], rest[0], rest[1:]
    elif rest:
        spec, executable, rest = rest[0], None, rest[1:]
    else:
        raise Unsupported("npx has no package to run")
    package, version = split_npm_spec(spec)
    exact = version is not None and bool(EXACT_SEMVER.match(version))
    return Launch("npm", package, version, exact, executable, list(rest), "npx", notes)


def split_npm_spec(spec: str) -> tuple[str, str | None]:
    """``@scope/name@1.2.3`` -> (``@scope/name``, ``1.2.3``); refuses git, file and URL specs."""
    at = spec.find("@", 1)
    package, version = (spec[:at], spec[at + 1:] or None) if at > 0 else (spec, None)
    if not NPM_NAME.match(package) or package.startswith(("npm:", "github:", "git+", "file:", "http")):
        raise Unsupported(f"{spec!r} is not a package on the npm registry; tbx imports registry packages only")
    return package, version


def _uvx(args: list[str], launcher: str) -> Launch:
    notes: list[str] = []
    source: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        option, has_value, value = arg.partition("=")
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-"):
            break
        if option in UVX_REFUSED:
            raise Unsupported(f"{UVX_REFUSED[option]} ({option}), which a catalog entry cannot express")
        if option in UVX_VALUE_OPTIONS:
            if not has_value:
                if i + 1 >= len(args):
                    raise Unsupported(f"{launcher} {option} has no value after it")
                value = args[i + 1]
                i += 1
            if option == "--from":
                source = value
            elif option in ("--python", "-p"):
                notes.append(f"Python {value} requested; the image's Python is used")
            else:
                notes.append(f"{launcher} option {option} dropped")
        else:
            notes.append(f"{launcher} option {option} dropped")
        i += 1
    rest = args[i:]
    if not rest:
        raise Unsupported(f"{launcher} has no command to run")
    if source is not None:
        package, version, extra_notes = split_pypi_spec(source)
        executable, rest = rest[0], rest[1:]
    else:
        package, version, extra_notes = split_pypi_spec(rest[0])
        executable, rest = None, rest[1:]
    exact = version is not None and version != "latest"
    return Launch("pypi", package, None if version == "latest" else version, exact, executable, list(rest),
                  launcher, notes + extra_notes)


def _pipx(args: list[str]) -> Launch:
    spec: str | None = None
    i = 0
    while i < len(args) and args[i].startswith("-"):
        option, has_value, value = args[i].partition("=")
        if option == "--spec":
            if not has_value:
                if i + 1 >= len(args):
                    raise Unsupported("pipx run --spec has no value after it")
                value = args[i + 1]
                i += 1
            spec = value
        elif option in ("--index-url", "--pip-args"):
            raise Unsupported(f"pipx {option} changes how the package is installed, which a catalog entry cannot express")
        i += 1
    rest = args[i:]
    if not rest:
        raise Unsupported("pipx run has no command to run")
    package, version, notes = split_pypi_spec(spec or rest[0])
    executable = rest[0] if spec else None
    exact = version is not None and version != "latest"
    return Launch("pypi", package, None if version == "latest" else version, exact, executable, rest[1:],
                  "pipx run", notes)


def split_pypi_spec(spec: str) -> tuple[str, str | None, list[str]]:
    """``pkg``, ``pkg==1.2``, ``pkg@1.2``, ``pkg@latest``, ``pkg[extra]==1.2`` -> (name, version, notes)."""
    match = PYPI_REQ.match(spec.strip())
    if match is None or "://" in spec or spec.startswith(("git+", ".", "/")):
        raise Unsupported(f"{spec!r} is not a package on PyPI; tbx imports registry packages only")
    name, extras, rest = match["name"], match["extras"], match["rest"].strip()
    notes = [f"extras {extras} dropped: the build installs {name} alone"] if extras else []
    if not rest:
        return name, None, notes
    for prefix in ("==", "@"):
        if rest.startswith(prefix):
            version = rest[len(prefix):].strip()
            if version == "latest" or EXACT_PEP440.match(version):
                return name, version, notes
    raise Unsupported(f"{spec!r} is a version range; pin it with == in the source file and import again")
