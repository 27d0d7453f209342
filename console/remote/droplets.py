"""DigitalOcean droplets for remote toolboxes, through python-digitalocean.

The library does the HTTP calls, JSON, pagination and objects. Two things it does not
give us: the status code and headers of a failed answer (it raises ``DataReadError`` with
the message alone), and a request timeout other than a process-wide environment
variable. One seam, :class:`_Wire`, mixed into every library object this module creates,
fills both in: it bounds each request, waits out 429 answers within a budget, and turns
every other non-2xx answer into a :class:`DigitalOceanError` whose message says what to
do. Everything here is blocking; callers run it in a thread.

The token never appears in a message, a log line or a repr.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import digitalocean
from digitalocean import Droplet
from digitalocean.baseapi import BaseAPI

from console.remote.do_errors import (  # noqa: F401 - the errors are part of this module's API
    DROPLETS_PAGE,
    TOKEN_PAGE,
    DigitalOceanError,
    InvalidChoice,
    ProvisionFailed,
    ProvisionTimeout,
    QuotaExceeded,
    RateLimited,
    ResourceGone,
    TokenRejected,
    Unreachable,
    _scrub,
    error_for,
    retry_delay,
)
from console.remote.do_wire import (
    _Account,
    _Action,
    _Droplet,
    _Manager,
    _SSHKey,
    _WireConfig,
)

log = logging.getLogger(__name__)

TAG = "tbx"
"""Every droplet this program creates carries this tag; :meth:`DropletApi.ours` lists by it."""


# -- results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SizeInfo:
    slug: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    price_monthly: float
    regions: tuple[str, ...]
    available: bool


@dataclass(frozen=True)
class RegionInfo:
    slug: str
    name: str
    available: bool
    sizes: tuple[str, ...]


@dataclass(frozen=True)
class DropletInfo:
    id: int
    name: str
    status: str
    ip: str | None
    region: str
    size: str
    tags: tuple[str, ...]


def _droplet_info(d: Droplet) -> DropletInfo:
    region = d.region.get("slug", "") if isinstance(d.region, dict) else str(d.region or "")
    return DropletInfo(
        id=int(d.id),
        name=str(d.name),
        status=str(d.status),
        ip=d.ip_address or None,
        region=region,
        size=str(d.size_slug or ""),
        tags=tuple(d.tags or ()),
    )


# -- pure checks ------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$")
_TAG = re.compile(r"^[A-Za-z0-9:_-]{1,255}$")


def key_fingerprint(public_key: str) -> str:
    """DigitalOcean's name for an SSH key: MD5 of the key blob, colon-separated hex."""
    parts = public_key.split()
    if len(parts) < 2:
        raise InvalidChoice("the SSH public key is not of the form `type base64 [comment]`")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError as exc:
        raise InvalidChoice("the SSH public key's base64 part does not decode") from exc
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _brief(items: Iterable[str], limit: int = 10) -> str:
    items = list(items)
    if not items:
        return "(none)"
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown}, … ({len(items) - limit} more)"


def check_choice(region: str, size: str, regions: Iterable[RegionInfo], sizes: Iterable[SizeInfo]) -> None:
    """Raise :class:`InvalidChoice` unless ``size`` can be created in ``region`` (pure)."""
    by_region = {r.slug: r for r in regions}
    by_size = {s.slug: s for s in sizes}
    open_regions = sorted(slug for slug, r in by_region.items() if r.available)
    if region not in by_region or not by_region[region].available:
        raise InvalidChoice(
            f"DigitalOcean has no region {region!r} open for new droplets; use --region with one of: {_brief(open_regions)}"
        )
    open_sizes = [s for s in sorted(by_size.values(), key=lambda s: (s.price_monthly, s.slug)) if s.available]
    if size not in by_size or not by_size[size].available:
        raise InvalidChoice(
            f"DigitalOcean has no droplet size {size!r}; use --size with one of: {_brief(s.slug for s in open_sizes)}"
        )
    # A size's ``regions`` is where DigitalOcean can create it now.
    if region not in by_size[size].regions:
        elsewhere = sorted(r for r in by_size[size].regions if r in open_regions)
        raise InvalidChoice(
            f"size {size} is not available in {region}; pick a region among {_brief(elsewhere)} "
            f"or a size among {_brief(s.slug for s in open_sizes if region in s.regions)}"
        )


def _check_names(name: str, toolbox_id: str) -> None:
    if not _NAME.match(name):
        raise InvalidChoice(
            f"{name!r} cannot be a droplet name; use letters, digits, '.' and '-' (at most 63, not starting with '-')"
        )
    if not _TAG.match(f"tbx-toolbox-{toolbox_id}"):
        raise InvalidChoice(f"toolbox id {toolbox_id!r} cannot be part of a DigitalOcean tag (letters, digits, : _ -)")


# -- the client -------------------------------------------------------------------------

_T = TypeVar("_T", bound=BaseAPI)


def _ignore(_line: str) -> None:
    pass


class DropletApi:
    """The DigitalOcean calls a droplet toolbox needs. Blocking; every request is bounded."""

    def __init__(
        self,
        token: str,
        endpoint: str | None = None,
        *,
        request_timeout: float = 30.0,
        rate_limit_retries: int = 4,
        rate_limit_wait: float = 60.0,
    ) -> None:
        """``endpoint`` None means the library's choice: DIGITALOCEAN_END_POINT, else the public API.

        A 429 is retried up to ``rate_limit_retries`` times as long as the waits add up to
        at most ``rate_limit_wait`` seconds; then :class:`RateLimited`.
        """
        if not token or not token.strip():
            raise TokenRejected(f"no DigitalOcean API token given; create one at {TOKEN_PAGE}")
        if endpoint is not None and not endpoint.endswith("/"):
            endpoint += "/"  # urljoin would otherwise drop the last path segment ("/v2")
        self._endpoint = endpoint
        self._wire = _WireConfig(request_timeout, rate_limit_retries, rate_limit_wait, token.strip())

    def __repr__(self) -> str:
        return f"DropletApi(endpoint={self._endpoint or 'default'!r})"

    # -- plumbing

    def _make(self, cls: type[_T], **attrs: Any) -> _T:
        kwargs: dict[str, Any] = {"token": self._wire.token, "_tbx": self._wire, **attrs}
        if self._endpoint is not None:
            kwargs["end_point"] = self._endpoint
        with self._library_errors():
            return cls(**kwargs)

    @contextmanager
    def _library_errors(self) -> Iterator[None]:
        """The library's own exceptions (the wire raises ours before most of them can happen)."""
        try:
            yield
        except digitalocean.TokenError as exc:
            raise TokenRejected(f"no DigitalOcean API token given; create one at {TOKEN_PAGE}") from exc
        except digitalocean.EndPointError as exc:
            raise InvalidChoice("the DigitalOcean API endpoint is not a URL; fix DIGITALOCEAN_END_POINT") from exc
        except digitalocean.NotFoundError as exc:
            raise ResourceGone("DigitalOcean has no such resource (deleted already?)", status=404) from exc
        except digitalocean.baseapi.JSONReadError as exc:
            raise DigitalOceanError(
                "the DigitalOcean API answered with something that is not JSON; check DIGITALOCEAN_END_POINT"
            ) from exc
        except digitalocean.Error as exc:
            raise DigitalOceanError(f"DigitalOcean request failed: {_scrub(str(exc), [self._wire.token])}") from exc

    # -- reads

    def check_token(self) -> str:
        """The account's email; :class:`TokenRejected` when the token is not accepted."""
        account = self._make(_Account)
        with self._library_errors():
            account.load()
        return str(account.email)

    def sizes(self) -> list[SizeInfo]:
        with self._library_errors():
            raw = self._make(_Manager).get_all_sizes()
        return [
            SizeInfo(
                slug=str(s.slug),
                vcpus=int(s.vcpus or 0),
                memory_mb=int(s.memory or 0),
                disk_gb=int(s.disk or 0),
                price_monthly=float(s.price_monthly or 0.0),
                regions=tuple(s.regions or ()),
                available=bool(getattr(s, "available", True)),
            )
            for s in raw
        ]

    def regions(self) -> list[RegionInfo]:
        with self._library_errors():
            raw = self._make(_Manager).get_all_regions()
        return [
            RegionInfo(slug=str(r.slug), name=str(r.name), available=bool(r.available), sizes=tuple(r.sizes or ()))
            for r in raw
        ]

    def price(self, size: str) -> float:
        """Monthly price in USD of droplet size ``size``."""
        sizes = self.sizes()
        for s in sizes:
            if s.slug == size:
                return s.price_monthly
        raise InvalidChoice(f"DigitalOcean has no droplet size {size!r}; choose one of: {_brief(s.slug for s in sizes)}")

    def ours(self) -> list[DropletInfo]:
        """Every droplet tagged ``tbx``, whatever toolbox it belongs to."""
        with self._library_errors():
            raw = self._make(_Manager).get_all_droplets(tag_name=TAG)
        return [_droplet_info(d) for d in raw]

    # -- writes

    def destroy(self, droplet_id: int, key_fingerprint: str | None = None) -> None:
        """Delete the droplet and its SSH key; either being gone already is success."""
        with suppress(ResourceGone), self._library_errors():
            self._make(_Droplet, id=int(droplet_id)).destroy()
        if key_fingerprint:
            with suppress(ResourceGone), self._library_errors():
                self._make(_SSHKey, id=key_fingerprint).destroy()

    def provision(
        self,
        *,
        name: str,
        region: str,
        size: str,
        image: str,
        public_key: str,
        user_data: str,
        toolbox_id: str,
        timeout: float = 300,
        poll: float = 2.0,
        progress: Callable[[str], None] = _ignore,
    ) -> DropletInfo:
        """Register ``public_key``, create the droplet and wait until it is active with a public IPv4.

        Any failure (API error, errored creation, timeout, KeyboardInterrupt) deletes what
        this call created before the exception propagates.
        """
        _check_names(name, toolbox_id)
        key_fingerprint(public_key)  # refuse a malformed key before anything is created
        check_choice(region, size, self.regions(), self.sizes())

        key_id: int | None = None
        key_is_ours = False
        droplet_id: int | None = None
        create_sent = False
        toolbox_tag = f"tbx-toolbox-{toolbox_id}"
        try:
            progress(f"registering SSH key tbx-{name}")
            key_id, key_is_ours = self._register_key(f"tbx-{name}", public_key.strip())

            progress(f"creating droplet {name} ({size} in {region})")
            droplet = self._make(
                _Droplet,
                name=name,
                region=region,
                size_slug=size,
                image=image,
                ssh_keys=[key_id],
                user_data=user_data,
                tags=[TAG, toolbox_tag],
            )
            create_sent = True
            with self._library_errors():
                droplet.create()
            droplet_id = int(droplet.id)
            action_id = droplet.action_ids[0] if droplet.action_ids else None
            return self._wait_active(droplet, action_id, timeout=timeout, poll=poll, progress=progress)
        except BaseException as exc:
            if droplet_id is None and create_sent:
                droplet_id = self._find_created(name, toolbox_tag)
            leftovers = self._clean_up(droplet_id, key_id if key_is_ours else None, name, progress)
            if leftovers and isinstance(exc, DigitalOceanError):
                raise type(exc)(
                    f"{exc}; {leftovers} could not be deleted, delete it at {DROPLETS_PAGE}",
                    status=exc.status,
                    api_id=exc.api_id,
                ) from exc
            raise

    def _register_key(self, key_name: str, public_key: str) -> tuple[int, bool]:
        """The key's id, and whether this call created it (only then may a failure delete it)."""
        key = self._make(_SSHKey, name=key_name, public_key=public_key)
        try:
            with self._library_errors():
                key.create()
            return int(key.id), True
        except DigitalOceanError as exc:
            # A key left by an earlier attempt whose clean-up failed: reuse it, never delete it.
            if exc.status != 422 or "already" not in str(exc).lower():
                raise
        with self._library_errors():
            found = key.load_by_pub_key(public_key)
        if found is None:
            raise DigitalOceanError("DigitalOcean says this SSH key is registered already but does not list it; try again")
        return int(found.id), False

    def _wait_active(
        self, droplet: _Droplet, action_id: int | None, *, timeout: float, poll: float, progress: Callable[[str], None]
    ) -> DropletInfo:
        deadline = time.monotonic() + timeout
        last_status: str | None = None
        while True:
            with self._library_errors():
                droplet.load()
            status = str(droplet.status)
            if status != last_status:
                progress(f"droplet {droplet.id} is {status}")
                last_status = status
            if status == "active" and droplet.ip_address:
                progress(f"active at {droplet.ip_address}")
                return _droplet_info(droplet)
            if status in ("off", "archive"):
                raise ProvisionFailed(
                    f"droplet {droplet.id} went {status!r} while being created; try again or pick another region"
                )
            if action_id is not None and status == "new":
                action = self._make(_Action, id=action_id)
                with self._library_errors():
                    action.load_directly()
                if action.status == "errored":
                    raise ProvisionFailed(
                        f"DigitalOcean could not create droplet {droplet.id} (its create action errored); "
                        "try again or pick another region"
                    )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProvisionTimeout(
                    f"droplet {droplet.id} was still {status!r} after {timeout:g}s; try again later or pick another region"
                )
            time.sleep(min(poll, remaining))

    def _find_created(self, name: str, toolbox_tag: str) -> int | None:
        """After a create whose answer was lost: the droplet it may have made anyway."""
        try:
            with self._library_errors():
                raw = self._make(_Manager).get_all_droplets(tag_name=toolbox_tag)
        except DigitalOceanError as exc:
            log.warning("could not look for a half-created droplet %s: %s", name, exc)
            return None
        ids = [int(d.id) for d in raw if d.name == name]
        return ids[0] if ids else None

    def _clean_up(self, droplet_id: int | None, key_id: int | None, name: str, progress: Callable[[str], None]) -> str:
        """Delete what a failed provision made; returns what could not be deleted ('' if all went)."""
        left: list[str] = []

        def say(line: str) -> None:
            with suppress(Exception):  # a failing progress sink must not stop the clean-up
                progress(line)

        if droplet_id is not None:
            try:
                say(f"deleting droplet {droplet_id}")
                with suppress(ResourceGone), self._library_errors():
                    self._make(_Droplet, id=droplet_id).destroy()
            except DigitalOceanError as exc:
                log.warning("could not delete droplet %s after a failed provision: %s", droplet_id, exc)
                left.append(f"droplet {droplet_id}")
        if key_id is not None:
            try:
                say(f"deleting SSH key tbx-{name}")
                with suppress(ResourceGone), self._library_errors():
                    self._make(_SSHKey, id=key_id).destroy()
            except DigitalOceanError as exc:
                log.warning("could not delete SSH key tbx-%s after a failed provision: %s", name, exc)
                left.append(f"SSH key tbx-{name}")
        return " and ".join(left)
