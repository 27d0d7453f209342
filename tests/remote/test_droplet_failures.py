"""The real DigitalOcean API's failure modes, through the real python-digitalocean client
against the simulator: a droplet that is not visible yet, one that refuses or ignores a
DELETE while its create runs, a failed placement, a lost create answer, a retired image,
the hourly rate limit's 429. Whatever happens, a droplet tbx made is either gone or
handed to the keeper: nothing billed is forgotten."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from console.remote.cloudinit import cloud_init
from console.remote.droplets import (
    DigitalOceanError,
    DropletApi,
    InvalidChoice,
    Leftover,
    ProvisionFailed,
    ProvisionTimeout,
    QuotaExceeded,
    RateLimited,
)
from tests.remote.conftest import SIM_TOKEN
from tests.support.do_sim import DigitalOceanSim

TOKEN = SIM_TOKEN  # what the sim and api fixtures use (tests/remote/conftest.py)
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl tbx@test"


@dataclass
class Keeper:
    """What the vault would hold: every droplet handed over, and how each one ended."""

    kept: list[Leftover] = field(default_factory=list)
    settled: list[tuple[int, bool, str]] = field(default_factory=list)

    def keep(self, leftover: Leftover) -> None:
        self.kept.append(leftover)

    def settle(self, leftover: Leftover, destroyed: bool, error: str) -> None:
        self.settled.append((leftover.droplet_id, destroyed, error))


def provision(api: DropletApi, keeper: Keeper | None = None, **overrides: object):  # noqa: ANN201
    args: dict[str, object] = dict(
        name="tbx-one", region="nyc3", size="s-1vcpu-1gb", image="debian-12-x64", public_key=PUBLIC_KEY,
        user_data=cloud_init(), toolbox_id="tb0001", timeout=5, poll=0.02, keeper=keeper,
        not_found_grace=5, destroy_budget=5, destroy_poll=0.05,
    )
    args.update(overrides)
    return api.provision(**args)  # type: ignore[arg-type]


def droplet_gets(sim: DigitalOceanSim) -> int:
    return sum(1 for method, path in sim.requests if method == "GET" and path.startswith("/v2/droplets/"))


# -- 1. a 404 just after create -------------------------------------------------------


def test_early_404s_after_create_are_waited_out(sim: DigitalOceanSim, api: DropletApi) -> None:
    sim.hidden_for = 0.5
    keeper = Keeper()
    info = provision(api, keeper)
    assert info.status == "active" and info.id in sim.droplets
    assert droplet_gets(sim) > 3  # it asked again and again while the API said 404
    assert sim.deleted == [] and keeper.kept == []


def test_a_droplet_that_never_shows_is_kept_not_forgotten(sim: DigitalOceanSim, api: DropletApi) -> None:
    sim.hidden_for = 3600
    keeper = Keeper()
    started = time.monotonic()
    with pytest.raises(ProvisionTimeout, match=r"droplet \d+ was not visible to the DigitalOcean API after 0.3s") as caught:
        provision(api, keeper, not_found_grace=0.3, destroy_budget=0.3)
    assert time.monotonic() - started < 3
    [droplet_id] = sim.droplets  # billed: DELETE says 404 while the API does not show it yet
    [kept] = keeper.kept
    assert (kept.droplet_id, kept.name, kept.region, kept.size) == (droplet_id, "tbx-one", "nyc3", "s-1vcpu-1gb")
    assert keeper.settled == [(droplet_id, False, keeper.settled[0][2])] and keeper.settled[0][2]
    assert f"droplet {droplet_id} could not be deleted" in str(caught.value) and "kept" in str(caught.value)


# -- 2. deleting a droplet that is still new or locked --------------------------------


@pytest.mark.parametrize("answer", ["refuse", "ignore"])
def test_a_delete_while_the_create_runs_is_retried_until_the_droplet_is_gone(
        sim: DigitalOceanSim, api: DropletApi, answer: str) -> None:
    sim.delete_while_busy = answer
    sim.active_after = 0.8
    keeper = Keeper()
    lines: list[str] = []
    with pytest.raises(ProvisionTimeout, match="still 'new'"):
        provision(api, keeper, timeout=0.2, progress=lines.append)
    assert sim.droplets == {} and sim.keys == {}
    assert (sim.refused_deletes if answer == "refuse" else sim.ignored_deletes) >= 1
    [gone] = sim.deleted
    assert keeper.settled == [(gone["id"], True, "")]
    assert any("busy" in line or "still there" in line for line in lines), lines


def test_a_droplet_that_cannot_be_deleted_is_handed_to_the_keeper(sim: DigitalOceanSim, api: DropletApi) -> None:
    sim.stick_in_new = True  # its create never ends: every DELETE is refused
    keeper = Keeper()
    with pytest.raises(ProvisionTimeout) as caught:
        provision(api, keeper, timeout=0.2, destroy_budget=0.4)
    [droplet_id] = sim.droplets
    [kept] = keeper.kept
    assert kept.droplet_id == droplet_id and kept.key  # its SSH key stays with it, to go with it later
    assert len(sim.keys) == 1
    [(settled_id, destroyed, error)] = keeper.settled
    assert (settled_id, destroyed) == (droplet_id, False) and "pending event" in error
    message = str(caught.value)
    assert f"droplet {droplet_id} could not be deleted" in message and "\n" not in message


def test_without_a_keeper_the_error_says_where_to_delete_it(sim: DigitalOceanSim, api: DropletApi) -> None:
    sim.stick_in_new = True
    with pytest.raises(ProvisionTimeout, match=r"delete it at cloud\.digitalocean\.com/droplets"):
        provision(api, None, timeout=0.1, destroy_budget=0.2)


def test_destroy_waits_out_a_locked_droplet_and_confirms_it_is_gone(sim: DigitalOceanSim, api: DropletApi) -> None:
    sim.active_after = 0.6
    droplet_id = sim.create_raw(name="tbx-busy", tags=["tbx"])
    started = time.monotonic()
    api.destroy(droplet_id, budget=5, poll=0.05)
    assert 0.5 < time.monotonic() - started < 4
    assert sim.droplets == {} and sim.refused_deletes >= 1


# -- a failed placement, a lost answer -------------------------------------------------


def test_a_failed_placement_says_so_and_leaves_nothing(sim: DigitalOceanSim, api: DropletApi) -> None:
    sim.fail_placement = True
    keeper = Keeper()
    started = time.monotonic()
    with pytest.raises(ProvisionFailed, match=r"DigitalOcean could not place droplet \d+ in nyc3.*pick another region"):
        provision(api, keeper)
    assert time.monotonic() - started < 3  # the errored create action says at once it is gone
    assert len(sim.removed) == 1 and sim.droplets == {} and sim.keys == {}
    assert all(destroyed for _id, destroyed, _error in keeper.settled)


def test_a_lost_create_answer_finds_the_droplet_by_name_before_its_tag_applies(
        sim: DigitalOceanSim, api: DropletApi) -> None:
    sim.lose_create_answer = True
    sim.tag_lag = 3600
    keeper = Keeper()
    with pytest.raises(DigitalOceanError, match="failed with 500"):
        provision(api, keeper)
    assert sim.droplets == {} and len(sim.deleted) == 1 and sim.keys == {}
    assert any(path.rstrip("/") == "/v2/droplets" and query.get("name") == ["tbx-one"] for _m, path, query in sim.queries)
    assert not any("name" in query and "tag_name" in query for _m, _p, query in sim.queries)


# -- the image, the create body, the error text ----------------------------------------


def test_a_retired_image_is_refused_up_front_with_the_usable_ones(sim: DigitalOceanSim, api: DropletApi) -> None:
    with pytest.raises(InvalidChoice) as caught:
        provision(api, image="debian-10-x64", region="lon1")
    message = str(caught.value)
    assert message.startswith("DigitalOcean has no image 'debian-10-x64'")
    assert "--image" in message and "debian-12-x64" in message and "ubuntu-24-04-x64" in message
    assert "fedora-42-x64" not in message  # not in lon1
    assert "docker-20-04" not in message  # an application, not a distribution
    assert "\n" not in message and caught.value.exit_code == 2
    assert sim.count("POST", "/v2") == 0
    assert sim.count("GET", "/v2/images/debian-10-x64") == 1


def test_an_image_from_another_region_is_refused_up_front(sim: DigitalOceanSim, api: DropletApi) -> None:
    with pytest.raises(InvalidChoice, match=r"image 'fedora-42-x64' is not available in lon1.*ams3, fra1, nyc3"):
        provision(api, image="fedora-42-x64", region="lon1")
    assert sim.count("POST", "/v2") == 0


def test_the_distribution_images(api: DropletApi) -> None:
    slugs = [i.slug for i in api.images()]
    assert slugs == ["debian-12-x64", "fedora-42-x64", "ubuntu-24-04-x64"]


def test_the_create_body_leaves_out_what_is_not_set(sim: DigitalOceanSim, api: DropletApi) -> None:
    provision(api)
    [body] = sim.create_bodies
    assert "vpc_uuid" not in body
    assert None not in body.values()
    assert body["tags"] == ["tbx", "tbx-toolbox-tb0001"]


def test_the_home_tag_marks_the_installation(sim: DigitalOceanSim, api: DropletApi) -> None:
    info = provision(api, home="0123abcd")
    assert info.tags == ("tbx", "tbx-toolbox-tb0001", "tbx-home-0123abcd")


def test_the_ssh_key_is_named_like_the_droplet(sim: DigitalOceanSim, api: DropletApi) -> None:
    lines: list[str] = []
    provision(api, progress=lines.append)
    [key] = sim.keys.values()
    assert key["name"] == "tbx-one"
    assert lines[0] == "registering SSH key tbx-one"


def test_errors_carry_the_apis_request_id(sim: DigitalOceanSim, api: DropletApi) -> None:
    sim.droplet_limit = 0
    with pytest.raises(QuotaExceeded) as caught:
        provision(api)
    assert caught.value.request_id and len(caught.value.request_id) == 36
    assert str(caught.value).endswith(f"(DigitalOcean request {caught.value.request_id})")


# -- the hourly rate limit: a 429 with only ratelimit-reset ---------------------------


@pytest.mark.parametrize("skew", [-30.0, 30.0])
def test_a_429_without_retry_after_waits_until_the_reset_by_the_apis_clock(sim: DigitalOceanSim, skew: float) -> None:
    """ratelimit-reset is an epoch second of the API's clock; ours may be off by a minute."""
    sim.clock_skew = skew
    sim.limit_for(1.2)
    api = DropletApi(TOKEN, endpoint=sim.endpoint, rate_limit_wait=10)
    started = time.monotonic()
    assert len(api.sizes()) == len(sim.sizes)
    assert 1.1 < time.monotonic() - started < 6
    assert 2 <= sim.count("GET", "/v2/sizes") <= 4


def test_a_reset_already_past_still_backs_off(sim: DigitalOceanSim) -> None:
    sim.retry_after = None  # no Retry-After; ratelimit-reset is "now"
    sim.rate_limit_next = 2
    api = DropletApi(TOKEN, endpoint=sim.endpoint, rate_limit_wait=10)
    started = time.monotonic()
    api.regions()
    assert time.monotonic() - started >= 1.0  # not three requests in a row


def test_the_hourly_limit_far_away_fails_at_once_saying_when(sim: DigitalOceanSim) -> None:
    sim.limit_for(1200)
    api = DropletApi(TOKEN, endpoint=sim.endpoint, rate_limit_wait=60)
    started = time.monotonic()
    with pytest.raises(RateLimited, match=r"hourly request limit.*wait about 20 min and try again"):
        api.sizes()
    assert time.monotonic() - started < 1
