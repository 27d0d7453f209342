"""Plan the import of a desktop MCP client's servers (Claude Desktop, Cursor, VS Code).

A plan is pure data: for each server in the file, either an item (a catalog entry with
origin "import", its plain env, its secrets, host paths turned into mounts) or a
one-line reason it was skipped. Nothing is created here; ``console.services.imports``
does that. Secret values live only in ``ImportItem.secrets`` and are masked in every
printable form (``render_plan``, ``to_json``, ``repr``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from console.catalog.clientfiles import WHOLE_INPUT, ClientFile, Unresolvable, read_client_file, read_env_file
from console.catalog.launchers import Launch, Unsupported, parse_launch
from console.catalog.loader import Catalog, load_builtin
from console.catalog.model import CatalogEntry, EnvVar, MountSpec, PackageSource, Source
from console.catalog.mounts import MountBook
from console.catalog.registry import Registry, RegistryError
from console.catalog.remote_import import RemoteItem, RemoteServer, remote_of
from console.catalog.sensitive import is_secret, looks_like_secret, secret_flag
from console.model import Limits, Mount, check_name

SECRET_MASK = "<secret>"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# For packages the catalog does not know: what a typical server of that runtime needs.
DEFAULT_LIMITS = {"npm": Limits(cpus=1.0, memory_mb=512, pids=128), "pypi": Limits(cpus=1.0, memory_mb=384, pids=128)}


@dataclass
class PendingInput:
    """An env value the file does not hold (a VS Code ``${input:...}``, an empty secret);
    asked for when the plan is applied."""

    env: str
    label: str
    secret: bool


@dataclass
class ImportItem:
    name: str
    """The server name to create (valid per ``check_name``, unique in the plan)."""
    key: str
    """The server's name in the source file."""
    entry: CatalogEntry
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    """Env name -> secret value. Never printed: every printable form shows ``<secret>``."""
    inputs: list[PendingInput] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    resolved: str | None = None
    """How an unpinned version was made exact, e.g. "unpinned, resolved to 1.2.3 on npm"."""
    notes: list[str] = field(default_factory=list)

    @property
    def source_label(self) -> str:
        package = self.entry.source.package
        assert package is not None  # imports are always package builds
        sep = "==" if package.kind == "pypi" else "@"
        return f"{package.kind}:{package.package}{sep}{package.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key": self.key,
            "source": self.source_label,
            "command": self.entry.command,
            "env": dict(self.env),
            "secrets": {name: SECRET_MASK for name in self.secrets},
            "inputs": [asdict(p) for p in self.inputs],
            "mounts": [m.model_dump(mode="json") for m in self.mounts],
            "network": self.entry.network,
            "resolved": self.resolved,
            "notes": list(self.notes),
            "entry": self.entry.model_dump(mode="json"),
        }


@dataclass
class Skipped:
    name: str
    reason: str
    remote: bool = False
    """A remote server tbx cannot add as the file writes it (a WebSocket one, a key in its URL)."""


@dataclass
class ImportPlan:
    source: Path
    format: str
    items: list[ImportItem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    remotes: list[RemoteItem] = field(default_factory=list)
    """Remote servers (a ``url`` entry, ``mcp-remote URL``): added as remote servers."""

    def to_json(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "format": self.format,
            "items": [item.to_json() for item in self.items],
            "remotes": [remote.to_json(SECRET_MASK) for remote in self.remotes],
            "skipped": [asdict(s) for s in self.skipped],
        }


@dataclass(frozen=True)
class Naming:
    """How imported servers are named next to those the toolbox has."""

    existing: frozenset[str] = frozenset()
    """The toolbox's server names: a planned name among them is skipped, saying how to rename."""
    toolbox: str = "local"
    rename: Mapping[str, str] = field(default_factory=dict)
    """``--name KEY=NAME``: the file's key (or the name tbx made of it) to the name to use."""
    prefix: str = ""


def plan_import(
    path: Path,
    catalog: Catalog | None = None,
    registry: Registry | None = None,
    environ: Mapping[str, str] | None = None,
    naming: Naming | None = None,
) -> ImportPlan:
    """Read ``path`` and plan every server in it; unreadable files raise ``ImportFileError``.

    The plan is what the import does, dry run or not: a name the toolbox already has is
    skipped here (with the way to rename it), never left to fail when the server is added."""
    client = read_client_file(path)
    if catalog is None:
        catalog = Catalog({e.id: e for e in load_builtin()})
    naming = naming or Naming()
    planner = _Planner(client, catalog, registry or Registry(), environ, naming)
    plan = ImportPlan(source=path, format=client.format)
    for server in client.servers:
        shown = server.key + (f" ({server.scope})" if server.scope else "")
        try:
            item = planner.remote(server.key, server.spec) or planner.plan(server.key, server.spec)
        except (Unsupported, Unresolvable, RegistryError) as exc:
            plan.skipped.append(Skipped(shown, str(exc), remote=isinstance(exc, RemoteServer)))
            continue
        if server.scope:
            item.notes.append(f"from {server.scope}")
        if item.name in naming.existing:
            planner.taken.discard(item.name)
            plan.skipped.append(Skipped(shown, f"toolbox {naming.toolbox} already has a server named '{item.name}'; "
                                               f"pass --name {_quoted(server.key)}=NEW-NAME or --prefix PREFIX"))
            continue
        if isinstance(item, RemoteItem):
            plan.remotes.append(item)
        else:
            plan.items.append(item)
    return plan


def _quoted(key: str) -> str:
    return shlex.quote(key)


def server_name(key: str, taken: set[str]) -> str:
    """The config key made a valid server name: lowercased, a-z0-9 and '-', deduplicated."""
    base = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")[:40].strip("-") or "server"
    name, n = base, 2
    while name in taken:
        suffix = f"-{n}"
        name = base[: 40 - len(suffix)].rstrip("-") + suffix
        n += 1
    taken.add(check_name("server", name))
    return name


class _Planner:
    def __init__(self, client: ClientFile, catalog: Catalog, registry: Registry, environ: Mapping[str, str] | None,
                 naming: Naming):
        self.client = client
        self.catalog = catalog
        self.registry = registry
        self.environ = environ
        self.naming = naming
        self.taken: set[str] = set()

    def remote(self, key: str, spec: Any) -> RemoteItem | None:
        """The entry as a remote server, if it is one (``remote_import``)."""
        found = remote_of(self.client, spec, self.environ) if isinstance(spec, dict) else None
        if found is None:
            return None
        url, transport, headers, inputs = found
        return RemoteItem(self._name(key), key, url, transport, headers, inputs, _field_notes(spec))

    def plan(self, key: str, spec: Any) -> ImportItem:
        if not isinstance(spec, dict):
            raise Unsupported("is not a JSON object")
        command, args = self._command(spec)
        launch = parse_launch(command, args)
        _refuse_secret_args(launch.args)
        known = self.catalog.find_package(launch.kind, launch.package)
        version, resolved = self._version(launch)
        executable = self._executable(launch, version, known)
        known_secrets = {s.name for s in known.secrets} if known else set()
        read_only = bool(known and known.mounts and all(m.read_only for m in known.mounts))
        book = MountBook(read_only=read_only)
        item_env, secrets, inputs = self._env(spec, known_secrets, book)
        command_line = [executable] + [book.rewrite(arg) for arg in launch.args]
        notes = launch.notes + _field_notes(spec) + book.notes
        if known is None:
            notes.append("runs without network (package not in the catalog); if it calls the internet, give it "
                         "the hosts it needs: 'tbx server egress TOOLBOX/SERVER --allow-host HOST'")
        name = self._name(key)
        try:
            entry = CatalogEntry(
                id=name,
                title=key,
                description=_description(self.client, launch, known),
                source=Source(package=PackageSource(kind=launch.kind, package=launch.package, version=version)),
                command=command_line,
                env=[EnvVar(name=k) for k in item_env] + [EnvVar(name=p.env, required=True)
                                                          for p in inputs if not p.secret],
                secrets=[EnvVar(name=k, required=True) for k in secrets] + [EnvVar(name=p.env, required=True)
                                                                          for p in inputs if p.secret],
                mounts=[MountSpec(target=m.target, description=f"{m.source} on the desktop", read_only=m.read_only)
                        for m in book.mounts],
                network=known.network if known else "none",
                egress=list(known.egress) if known else [],
                limits=known.limits if known else DEFAULT_LIMITS[launch.kind],
                oauth=known.oauth if known else None,
                origin="import",
            )
        except ValidationError as exc:
            self.taken.discard(name)
            problem = exc.errors()[0]
            raise Unsupported(f"cannot be described as a catalog entry: {problem['msg']}") from None
        return ImportItem(name, key, entry, item_env, secrets, inputs, book.mounts, resolved, notes)

    def _name(self, key: str) -> str:
        derived = server_name(key, set(self.taken))  # what tbx would call it, not claimed yet
        wanted = self.naming.rename.get(key, self.naming.rename.get(derived))
        if wanted is None:
            return server_name(self.naming.prefix + key, self.taken)
        if wanted in self.taken:
            raise Unsupported(f"--name gives '{wanted}' to two servers; give each its own")
        self.taken.add(wanted)
        return wanted

    def _command(self, spec: dict[str, Any]) -> tuple[str, list[str]]:
        command = spec.get("command")
        if not isinstance(command, str) or not command.strip():
            raise Unsupported("has no command to run")
        raw_args = spec.get("args", [])
        if not isinstance(raw_args, list) or not all(isinstance(a, str | int | float) for a in raw_args):
            raise Unsupported('"args" is not a list of strings')
        args = [self.client.expand(str(a), self.environ) for a in raw_args]
        for arg in args:
            found = re.search(r"\$\{input:([^}]+)\}", arg)
            if found:
                raise Unsupported(f"passes VS Code input '{found[1]}' on its command line; move it into env and import again")
        return self.client.expand(command.strip(), self.environ), args

    def _version(self, launch: Launch) -> tuple[str, str | None]:
        if launch.exact and launch.spec is not None:
            return launch.spec, None
        if launch.kind == "npm":
            version = self.registry.npm_version(launch.package, launch.spec)
            where = "npm"
        else:
            version = self.registry.pypi_version(launch.package, None)
            where = "PyPI"
        wanted = "unpinned" if launch.spec is None else f"{launch.spec!r}"
        return version, f"{wanted}, resolved to {version} on {where}"

    def _executable(self, launch: Launch, version: str, known: CatalogEntry | None) -> str:
        if launch.executable:
            return launch.executable
        if launch.kind == "pypi":
            return launch.package  # uvx/pipx run the executable named like the package
        if known and known.source.package and known.source.package.version == version:
            return known.command[0]
        bins = self.registry.npm_bins(launch.package, version)
        if len(bins) == 1:
            return next(iter(bins))
        # npx's own rule when a package has several: the one named like the package.
        short = launch.package.rsplit("/", 1)[-1]
        if short in bins:
            return short
        if not bins:
            raise Unsupported(f"npm package {launch.package}@{version} installs no executable")
        raise Unsupported(f"{launch.package} has several executables ({', '.join(sorted(bins))}); "
                          f"use 'npx -p {launch.package} CMD' in the source file")

    def _env(
        self, spec: dict[str, Any], known_secrets: set[str], book: MountBook
    ) -> tuple[dict[str, str], dict[str, str], list[PendingInput]]:
        raw = self._raw_env(spec)
        env: dict[str, str] = {}
        secrets: dict[str, str] = {}
        inputs: list[PendingInput] = []
        for name, value in raw.items():
            if not ENV_NAME.match(name):
                raise Unsupported(f"env name {name!r} is not a valid variable name")
            whole = WHOLE_INPUT.match(value)
            if whole:
                inputs.append(self._input(name, whole[1], known_secrets))
                continue
            try:
                value = self.client.expand(value, self.environ)
            except Unresolvable as exc:
                inputs.append(PendingInput(name, str(exc), secret=is_secret(name, "") or name in known_secrets))
                continue
            if "${input:" in value:
                raise Unsupported(f"env {name} embeds a VS Code input in a longer value; make it the whole value")
            if name in known_secrets or is_secret(name, value):
                if value:
                    secrets[name] = value
                else:
                    inputs.append(PendingInput(name, "empty in the source file", secret=True))
            else:
                env[name] = book.rewrite(value)
        return env, secrets, inputs

    def _raw_env(self, spec: dict[str, Any]) -> dict[str, str]:
        raw: dict[str, str] = {}
        env_file = spec.get("envFile")
        if isinstance(env_file, str):
            path = Path(self.client.expand(env_file, self.environ)).expanduser()
            try:
                raw.update(read_env_file(path))
            except (OSError, UnicodeDecodeError) as exc:
                raise Unsupported(f"cannot read its envFile {path}: {getattr(exc, 'strerror', None) or exc}") from None
        env = spec.get("env", {})
        if not isinstance(env, dict):
            raise Unsupported('"env" is not an object of variables')
        for name, value in env.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            if not isinstance(value, str | int | float):
                raise Unsupported(f"env {name} is not a string")
            raw[str(name)] = str(value)
        return raw

    def _input(self, env: str, input_id: str, known_secrets: set[str]) -> PendingInput:
        declared = self.client.inputs.get(input_id)
        if declared is None:
            return PendingInput(env, f"VS Code input '{input_id}' (not declared in the file)",
                                secret=is_secret(env, "") or env in known_secrets)
        description = declared.get("description")
        label = f"VS Code input '{input_id}'" + (f" ({description})" if description else "")
        secret = bool(declared.get("password")) or is_secret(env, "") or env in known_secrets
        return PendingInput(env, label, secret)


def _refuse_secret_args(args: list[str]) -> None:
    for index, arg in enumerate(args):
        flag, has_value, value = arg.partition("=")
        if secret_flag(flag) and ((has_value and value) or index + 1 < len(args)):
            raise Unsupported(f"passes a secret on its command line ({flag}); tbx keeps secrets out of argv: "
                              "give it through an env variable")
        if looks_like_secret(value if has_value else arg):
            raise Unsupported(f"passes a token on its command line (argument {index + 1}); tbx keeps secrets "
                              "out of argv: give it through an env variable")


def _field_notes(spec: dict[str, Any]) -> list[str]:
    notes = []
    if spec.get("cwd"):
        notes.append("its working directory (cwd) is not carried over")
    if spec.get("disabled") is True:
        notes.append("disabled in the source file; it is created stopped like every server")
    return notes


def _description(client: ClientFile, launch: Launch, known: CatalogEntry | None) -> str:
    origin = f"Imported from {client.path.name} ({launch.launcher} {launch.package})."
    return f"{known.description} {origin}" if known else origin


def render_plan(plan: ImportPlan) -> str:
    """The dry run a person reads. Secret values are never in it."""
    lines = [f"Import from {plan.source} ({plan.format}): "
             f"{len(plan.items) + len(plan.remotes)} to add, {len(plan.skipped)} skipped"]
    for item in plan.items:
        lines.append("")
        lines.append(f"+ {item.name}  {item.source_label}" + (f"  (was {item.key!r})" if item.key != item.name else ""))
        rows: list[tuple[str, str]] = [("command", shlex.join(item.entry.command))]
        rows += [("env", f"{k}={v}") for k, v in item.env.items()]
        rows += [("secret", f"{k}={SECRET_MASK}") for k in item.secrets]
        rows += [("ask", f"{p.env}: {p.label}" + (" (secret)" if p.secret else "")) for p in item.inputs]
        rows += [("mount", f"{m.source} -> {m.target}" + (" (read-only)" if m.read_only else "")) for m in item.mounts]
        rows.append(("network", item.entry.network))
        if item.entry.oauth is not None:
            rows.append(("oauth", f"{item.entry.oauth.provider} connection can be bound later"))
        if item.resolved:
            rows.append(("version", item.resolved))
        rows += [("note", note) for note in item.notes]
        lines += [f"    {label:<8} {text}" for label, text in rows]
    for remote in plan.remotes:
        lines.append("")
        lines.append(f"+ {remote.name}  remote {remote.where}" + (f"  (was {remote.key!r})" if remote.key != remote.name
                                                                   else ""))
        rows = [("transport", remote.transport + (" (falls back to sse)" if remote.transport != "sse" else ""))]
        rows += [("header", f"{name}: {SECRET_MASK}") for name in remote.headers]
        rows += [("ask", f"header {i.header}: {i.label} (secret)") for i in remote.inputs]
        rows += [("note", note) for note in remote.notes]
        lines += [f"    {label:<8} {text}" for label, text in rows]
    if plan.skipped:
        lines.append("")
        lines += [f"- skipped {s.name}: {s.reason}" for s in plan.skipped]
    return "\n".join(lines)
