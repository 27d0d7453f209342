"""The real DigitalOcean API's failure modes, on the simulator, with the client's real
timings (a 2 s poll while waiting for a droplet, a 1-2-4-8-15-30 s backoff while deleting
one): what each costs the user in wall-clock time.

1. A create whose droplet answers 404 for its first N seconds: time until it is active
   (the create itself takes 1 s here), and how many 404s it waited out.
2. A failed create whose droplet refuses DELETE ("pending event") while its create runs
   for T seconds: time until the clean-up confirms it is gone, and how many DELETEs.
3. The hourly rate limit (429, no Retry-After) lifting after R seconds, our clock a
   minute off: time until the call goes through.

    python bench/droplet_failures.py          # ~1 min
"""

from __future__ import annotations

import sys
import time
from contextlib import suppress
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.remote.cloudinit import cloud_init  # noqa: E402
from console.remote.droplets import DropletApi, ProvisionTimeout  # noqa: E402
from tests.support.do_sim import DigitalOceanSim  # noqa: E402

TOKEN = "dop_v1_bench"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl bench@tbx"


def provision(api: DropletApi, **overrides: object):  # noqa: ANN201
    args: dict[str, object] = dict(name="tbx-bench", region="fra1", size="s-1vcpu-1gb", image="debian-12-x64",
                                   public_key=KEY, user_data=cloud_init(), toolbox_id="tb_bench")
    args.update(overrides)
    return api.provision(**args)  # type: ignore[arg-type]


def early_404s(hidden: float) -> tuple[float, int]:
    with DigitalOceanSim(token=TOKEN) as sim:
        sim.active_after, sim.hidden_for = 1.0, hidden
        api = DropletApi(TOKEN, endpoint=sim.endpoint)
        started = time.monotonic()
        provision(api)
        took = time.monotonic() - started
        return took, sum(1 for m, p, _q in sim.queries if m == "GET" and p.startswith("/v2/droplets/")) - 1


def busy_delete(create_runs: float) -> tuple[float, int]:
    with DigitalOceanSim(token=TOKEN) as sim:
        sim.active_after = create_runs
        api = DropletApi(TOKEN, endpoint=sim.endpoint)
        started = time.monotonic()
        with suppress(ProvisionTimeout):
            provision(api, timeout=0.5)  # gives up at once: the clean-up meets the running create
        assert sim.droplets == {}, "the clean-up left the droplet"
        return time.monotonic() - started, sim.refused_deletes + 1


def hourly_limit(lifts_after: float, skew: float) -> float:
    with DigitalOceanSim(token=TOKEN) as sim:
        sim.clock_skew = skew
        sim.limit_for(lifts_after)
        api = DropletApi(TOKEN, endpoint=sim.endpoint)
        started = time.monotonic()
        api.sizes()
        return time.monotonic() - started


def main() -> None:
    print("1. create with the droplet invisible (404) for its first N s; active after 1 s")
    for hidden in (0.0, 3.0, 8.0):
        took, not_found = early_404s(hidden)
        print(f"   N = {hidden:4.1f} s: active after {took:5.2f} s, {not_found} GETs after the first")
    print("2. clean-up of a failed create whose droplet refuses DELETE while the create runs T s")
    for runs in (2.0, 6.0, 12.0):
        took, deletes = busy_delete(runs)
        print(f"   T = {runs:4.1f} s: gone after {took:5.2f} s, {deletes} DELETEs")
    print("3. hourly rate limit (429 without Retry-After) lifting after R s, our clock off by S s")
    for lifts, skew in ((2.0, -60.0), (2.0, 60.0), (6.0, 0.0)):
        print(f"   R = {lifts:3.1f} s, S = {skew:+5.1f} s: through after {hourly_limit(lifts, skew):5.2f} s")


if __name__ == "__main__":
    main()
