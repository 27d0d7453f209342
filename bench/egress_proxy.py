"""A 1 MB HTTPS download, direct and through a server's egress proxy, side by side.

The path through the proxy is the one a server in its container takes: client -> the
forwarder's TCP port (here on 127.0.0.1, in the container on its own loopback) -> the
proxy's Unix socket -> the allow-list check -> the origin. Every download opens a new
connection (no keep-alive), so each one pays the CONNECT, the TLS handshake and the
transfer. Direct and proxied downloads alternate, so both see the same machine; the
origin is a local HTTPS server on 127.0.0.8 with a self-signed certificate.

Run: .venv/bin/python bench/egress_proxy.py [--runs 20] [--size 1048576]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.egress_net import Origin, egress_rig, tls_for  # noqa: E402

IP = "127.0.0.8"


async def download(http: httpx2.AsyncClient, url: str, size: int) -> float:
    started = time.perf_counter()
    response = await http.get(url)
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or len(response.content) != size:
        raise SystemExit(f"download failed: {response.status_code}, {len(response.content)} bytes")
    return elapsed


async def main(runs: int, size: int) -> None:
    with tempfile.TemporaryDirectory(prefix="tbx-bench-egress-") as folder:
        server_tls, trusting = tls_for(Path(folder), IP)
        origin = await Origin(IP, tls=server_tls).start()
        fresh = httpx2.Limits(max_keepalive_connections=0)
        url = f"{origin.url}/bytes/{size}"
        async with egress_rig(Path(folder), [f"{IP}:{origin.port}"]) as rig:
            direct_client = httpx2.AsyncClient(verify=trusting, trust_env=False, limits=fresh)
            proxied_client = httpx2.AsyncClient(
                verify=trusting, trust_env=False, limits=fresh, proxy=rig.forwarder.url
            )
            async with direct_client as direct, proxied_client as proxied:
                await download(direct, url, size)  # warm both paths once
                await download(proxied, url, size)
                times: dict[str, list[float]] = {"direct": [], "proxy": []}
                for _ in range(runs):
                    times["direct"].append(await download(direct, url, size))
                    times["proxy"].append(await download(proxied, url, size))
            stats = rig.proxy.stats
        await origin.close()
    p50 = {path: statistics.median(values) * 1000 for path, values in times.items()}
    print(f"{size / 1e6:.1f} MB HTTPS download on loopback, p50 of {runs} each (new connection each)")
    print(f"{'path':<8} {'p50 ms':>8} {'min ms':>8} {'max ms':>8} {'MB/s':>8}")
    for path, values in times.items():
        print(
            f"{path:<8} {p50[path]:>8.2f} {min(values) * 1000:>8.2f} {max(values) * 1000:>8.2f}"
            f" {size / 1e6 / (p50[path] / 1000):>8.1f}"
        )
    print(f"ratio proxy/direct (p50): {p50['proxy'] / p50['direct']:.2f}x")
    print(f"proxy: {stats.allowed} tunnels, {stats.bytes_down / 1e6:.1f} MB down, {stats.blocked} blocked")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--size", type=int, default=1024 * 1024)
    options = parser.parse_args()
    asyncio.run(main(options.runs, options.size))
