"""What the DigitalOcean simulator offers: sizes, regions and images, in the API's shapes
(``GET /v2/sizes``, ``/v2/regions``, ``/v2/images``)."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def _size(slug: str, vcpus: int, memory: int, disk: int, price: float, regions: list[str], available: bool = True) -> Json:
    return {
        "slug": slug,
        "memory": memory,
        "vcpus": vcpus,
        "disk": disk,
        "transfer": round(memory / 1024, 1),
        "price_monthly": price,
        "price_hourly": round(price / 672, 5),
        "regions": regions,
        "available": available,
        "description": "Basic",
    }


ALL_REGIONS = ["nyc1", "nyc3", "sfo3", "ams3", "fra1", "lon1", "sgp1", "tor1"]
SIZES: list[Json] = [
    _size("s-1vcpu-512mb-10gb", 1, 512, 10, 4.0, ["nyc1", "fra1"]),
    _size("s-1vcpu-1gb", 1, 1024, 25, 6.0, ALL_REGIONS),
    _size("s-1vcpu-2gb", 1, 2048, 50, 12.0, ALL_REGIONS),
    _size("s-2vcpu-2gb", 2, 2048, 60, 18.0, ALL_REGIONS),
    _size("s-2vcpu-4gb", 2, 4096, 80, 24.0, ALL_REGIONS),
    _size("s-4vcpu-8gb", 4, 8192, 160, 48.0, ALL_REGIONS),
    _size("g-2vcpu-8gb", 2, 8192, 25, 63.0, ["nyc1", "nyc3", "fra1"]),
    _size("s-8vcpu-16gb-old", 8, 16384, 320, 96.0, [], available=False),
]
_REGION_NAMES = {
    "nyc1": "New York 1",
    "nyc2": "New York 2",
    "nyc3": "New York 3",
    "sfo3": "San Francisco 3",
    "ams3": "Amsterdam 3",
    "fra1": "Frankfurt 1",
    "lon1": "London 1",
    "sgp1": "Singapore 1",
    "tor1": "Toronto 1",
}
REGIONS: list[Json] = [
    {
        "name": name,
        "slug": slug,
        "features": ["backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"],
        "available": slug != "nyc2",  # closed to new droplets, as nyc2 is on the real API
        "sizes": [s["slug"] for s in SIZES if slug in s["regions"] and s["available"]],
    }
    for slug, name in _REGION_NAMES.items()
]


def _image(i: int, slug: str, name: str, dist: str, regions: list[str]) -> Json:
    return {
        "id": 160000000 + i,
        "name": name,
        "distribution": dist,
        "slug": slug,
        "public": True,
        "regions": regions,
        "created_at": "2024-04-25T00:00:00Z",
        "type": "base",
        "min_disk_size": 7,
        "size_gigabytes": 2.36,
        "description": f"{dist} {name}",
        "tags": [],
        "status": "available",
        "error_message": "",
    }


IMAGES: dict[str, Json] = {
    image["slug"]: image
    for image in (
        _image(0, "ubuntu-24-04-x64", "24.04 (LTS) x64", "Ubuntu", ALL_REGIONS),
        _image(1, "debian-12-x64", "12 x64", "Debian", ALL_REGIONS),
        _image(2, "fedora-42-x64", "42 x64", "Fedora", ["nyc3", "ams3", "fra1"]),
        _image(3, "debian-10-x64", "10 x64", "Debian", ALL_REGIONS),
        _image(4, "docker-20-04", "Docker on Ubuntu 20.04", "Ubuntu", ALL_REGIONS),
    )
}
"""Every image the simulator knows; ``DigitalOceanSim.retired`` hides some of them."""
APPLICATIONS = frozenset({"docker-20-04"})
"""1-Click application images: listed by ``?type=application``, not by ``?type=distribution``."""
RETIRED = frozenset({"debian-10-x64"})
"""Slugs DigitalOcean no longer resolves: ``GET /v2/images/{slug}`` is a 404, creating with one a 422."""
