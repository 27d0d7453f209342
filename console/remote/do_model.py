"""What the DigitalOcean client hands back, and the checks that need no request (pure)."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from console.remote.do_errors import InvalidChoice

TAG = "tbx"
"""Every droplet this program creates carries this tag; ``DropletApi.ours`` lists by it."""
TOOLBOX_TAG = "tbx-toolbox-"
"""+ the toolbox id: which toolbox a droplet was made for."""
HOME_TAG = "tbx-home-"
"""+ an installation's id: which tbx made it (two machines may share one account)."""


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
class ImageInfo:
    slug: str
    name: str
    distribution: str
    regions: tuple[str, ...]
    status: str


@dataclass(frozen=True)
class DropletInfo:
    id: int
    name: str
    status: str
    ip: str | None
    region: str
    size: str
    tags: tuple[str, ...]
    price_monthly: float | None = None
    created_at: str = ""

    def tagged(self, prefix: str) -> str | None:
        """The rest of the first tag starting with ``prefix`` (a toolbox or home id)."""
        return next((tag.removeprefix(prefix) for tag in self.tags if tag.startswith(prefix)), None)


@dataclass(frozen=True)
class Leftover:
    """A droplet a failed create made, which its clean-up is about to delete."""

    droplet_id: int
    name: str
    region: str
    size: str
    key: str | None
    """The fingerprint of the SSH key made for it (deleted with it), if it is ours."""
    error: str
    """Why the create failed."""


class Keeper(Protocol):
    """Where a droplet a failed create made is kept until it is known to be gone."""

    def keep(self, leftover: Leftover) -> None:
        """Before the clean-up tries to delete it: whatever happens next (a refused DELETE,
        a second Ctrl-C, a crash), it is not forgotten."""

    def settle(self, leftover: Leftover, destroyed: bool, error: str) -> None:
        """After: gone (``destroyed``), or still there and billed (``error`` says why)."""


def _slug_of(value: Any) -> str:
    return str(value.get("slug", "")) if isinstance(value, dict) else str(value or "")


def droplet_info(d: Any) -> DropletInfo:
    """A library ``Droplet`` as we keep it."""
    size = d.size if isinstance(getattr(d, "size", None), dict) else {}
    price = size.get("price_monthly")
    return DropletInfo(
        id=int(d.id),
        name=str(d.name),
        status=str(d.status),
        ip=d.ip_address or None,
        region=_slug_of(d.region),
        size=str(d.size_slug or size.get("slug") or ""),
        tags=tuple(d.tags or ()),
        price_monthly=float(price) if price is not None else None,
        created_at=str(getattr(d, "created_at", "") or ""),
    )


def image_info(i: Any) -> ImageInfo:
    return ImageInfo(slug=str(i.slug or i.id), name=str(i.name or ""), distribution=str(i.distribution or ""),
                     regions=tuple(i.regions or ()), status=str(getattr(i, "status", None) or "available"))


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


def brief(items: Iterable[str], limit: int = 10) -> str:
    items = list(items)
    if not items:
        return "(none)"
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown}, … ({len(items) - limit} more)"


def check_choice(region: str, size: str, regions: Iterable[RegionInfo], sizes: Iterable[SizeInfo]) -> None:
    """Raise :class:`InvalidChoice` unless ``size`` can be created in ``region``."""
    by_region = {r.slug: r for r in regions}
    by_size = {s.slug: s for s in sizes}
    open_regions = sorted(slug for slug, r in by_region.items() if r.available)
    if region not in by_region or not by_region[region].available:
        raise InvalidChoice(
            f"DigitalOcean has no region {region!r} open for new droplets; use --region with one of: {brief(open_regions)}"
        )
    open_sizes = [s for s in sorted(by_size.values(), key=lambda s: (s.price_monthly, s.slug)) if s.available]
    if size not in by_size or not by_size[size].available:
        raise InvalidChoice(
            f"DigitalOcean has no droplet size {size!r}; use --size with one of: {brief(s.slug for s in open_sizes)}"
        )
    # A size's ``regions`` is where DigitalOcean can create it now.
    if region not in by_size[size].regions:
        elsewhere = sorted(r for r in by_size[size].regions if r in open_regions)
        raise InvalidChoice(
            f"size {size} is not available in {region}; pick a region among {brief(elsewhere)} "
            f"or a size among {brief(s.slug for s in open_sizes if region in s.regions)}"
        )


def check_image(slug: str, region: str, found: ImageInfo | None, distributions: Iterable[ImageInfo]) -> None:
    """Raise :class:`InvalidChoice` unless ``found`` (``slug`` as the API answered it, None
    for a 404) can start a droplet in ``region``; the message lists the distribution images
    that can."""
    usable = sorted(i.slug for i in distributions if i.status == "available" and region in i.regions)
    if found is None or found.status != "available":
        retired = "retired?" if found is None else found.status
        raise InvalidChoice(
            f"DigitalOcean has no image {slug!r} ({retired}); use --image (or [droplet] image in config.toml) "
            f"with one of: {brief(usable)}"
        )
    if region not in found.regions:
        raise InvalidChoice(
            f"image {slug!r} is not available in {region}; pick a region among {brief(sorted(found.regions))} "
            f"or an image among {brief(usable)}"
        )


def check_names(name: str, tags: Iterable[str]) -> None:
    if not _NAME.match(name):
        raise InvalidChoice(
            f"{name!r} cannot be a droplet name; use letters, digits, '.' and '-' (at most 63, not starting with '-')"
        )
    for tag in tags:
        if not _TAG.match(tag):
            raise InvalidChoice(f"{tag!r} cannot be a DigitalOcean tag (letters, digits, : _ -)")
