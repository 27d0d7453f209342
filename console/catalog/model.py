"""What a catalog entry says about a server: where it comes from and what it needs."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from console.model import Limits, Record

_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:\s*(?:[<>]=?|[=!~]=)\s*[0-9A-Za-z.*+!]+\s*,?)+$")
_DIGEST_REF = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


class PackageSource(Record):
    """A package the host downloads (``pip download`` / ``npm pack``) for a local build."""

    kind: Literal["pypi", "npm"]
    package: str
    version: str = Field(pattern=r"^[0-9A-Za-z.+_-]+$")
    """An exact version: builds are cached by content, so ranges are not allowed."""
    constraints: list[str] = Field(default_factory=list)
    """Extra pip requirements that hold a dependency back (``mcp<2``) when a pinned
    server was written for an older release of a library it does not pin itself."""

    @field_validator("constraints")
    @classmethod
    def _requirements(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _REQUIREMENT.match(item):
                raise ValueError(f"constraint {item!r} must look like name<2 or name==1.2.3")
        return value

    @model_validator(mode="after")
    def _pip_only(self) -> PackageSource:
        if self.constraints and self.kind != "pypi":
            raise ValueError("constraints apply to PyPI packages only")
        return self


class RemoteSource(Record):
    """A server its vendor runs: reached at ``url``, nothing built or run here."""

    url: str = Field(pattern=r"^https?://[^\s@]+$")
    """https; plain http only to this machine (checked when the server is added)."""
    transport: Literal["streamable-http", "sse"] = "streamable-http"
    docs: str = Field(default="", pattern=r"^(https://\S+)?$")
    """Where the vendor documents ``url`` (so a changed address can be checked)."""


class Source(Record):
    image: str | None = None
    """An image reference pinned by digest (``repo@sha256:...``), pulled as is."""
    package: PackageSource | None = None
    remote: RemoteSource | None = None

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str | None) -> str | None:
        if value is not None and not _DIGEST_REF.match(value):
            raise ValueError(f"image {value!r} must be pinned by digest: name@sha256:<64 hex digits>")
        return value

    @model_validator(mode="after")
    def _some(self) -> Source:
        if self.remote is not None:
            if self.image is not None or self.package is not None:
                raise ValueError("a remote source has no image or package: nothing runs here")
            return self
        if self.image is None and self.package is None:
            raise ValueError("a source needs an image, a package, or both (or is remote)")
        return self


class EnvVar(Record):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    description: str = ""
    default: str | None = None
    required: bool = False


class MountSpec(Record):
    target: str = Field(pattern=r"^/")
    """Where the server expects it inside the container."""
    description: str = ""
    required: bool = True
    read_only: bool = False


class OAuthNeed(Record):
    provider: str
    """Provider id: github, google, microsoft, slack, or an OIDC provider's id."""
    scopes: list[str] = Field(default_factory=list)
    token_env: str | None = None
    """The env variable that takes the access token."""
    token_file: str | None = Field(default=None, pattern=r"^/")
    """For servers that cannot take the token from an env variable (Google Drive's reads a
    google-auth-library credentials file): the path inside the container where the token
    set is written as JSON. Exactly one of ``token_env`` and ``token_file`` is set."""

    @model_validator(mode="after")
    def _one_way_in(self) -> OAuthNeed:
        if (self.token_env is None) == (self.token_file is None):
            raise ValueError("an oauth need sets exactly one of token_env and token_file")
        return self


class CatalogEntry(Record):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    description: str
    source: Source
    command: list[str] = Field(default_factory=list)
    """argv inside the container. Package builds put the package's executables on PATH.
    Empty for a remote server (``source.remote``), and only for one."""
    env: list[EnvVar] = Field(default_factory=list)
    secrets: list[EnvVar] = Field(default_factory=list)
    """Env variables whose values are secrets: kept in the vault, injected at creation."""
    mounts: list[MountSpec] = Field(default_factory=list)
    network: Literal["none", "egress"] = "none"
    egress: list[str] = Field(default_factory=list)
    """The hosts a server of this entry needs to reach (its allow-list to start with)."""
    limits: Limits = Field(default_factory=Limits)
    oauth: OAuthNeed | None = None
    origin: Literal["builtin", "user", "import"] = "builtin"

    @model_validator(mode="after")
    def _runs_something(self) -> CatalogEntry:
        if (self.source.remote is None) != bool(self.command):
            raise ValueError("command: a server run here needs one; a remote server has none")
        return self

    @property
    def remote(self) -> RemoteSource | None:
        return self.source.remote
