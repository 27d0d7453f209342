"""The real DropletApi (python-digitalocean underneath) against the DigitalOcean simulator."""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from console.errors import TbxError
from console.remote.cloudinit import READY_MARKER, cloud_init
from console.remote.droplets import (
    DigitalOceanError,
    DropletApi,
    InvalidChoice,
    ProvisionFailed,
    ProvisionTimeout,
    QuotaExceeded,
    RateLimited,
    TokenRejected,
    Unreachable,
    key_fingerprint,
    retry_delay,
)
from tests.remote.conftest import SIM_TOKEN
from tests.support.do_sim import DigitalOceanSim

TOKEN = SIM_TOKEN  # what the sim and api fixtures use (tests/remote/conftest.py)
CANARY = "dop_v1_canary-7f3a9c1e-DO-NOT-LEAK-5b2d"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl tbx@test"


def provision(api: DropletApi, lines: list[str] | None = None, **overrides: object):  # noqa: ANN201
    args: dict[str, object] = dict(
        name="tb-one",
        region="nyc3",
        size="s-1vcpu-1gb",
        image="ubuntu-24-04-x64",
        public_key=PUBLIC_KEY,
        user_data=cloud_init(),
        toolbox_id="tb0001",
        timeout=5,
        poll=0.02,
        destroy_poll=0.05,
        progress=(lines.append if lines is not None else (lambda _line: None)),
    )
    args.update(overrides)
    return api.provision(**args)  # type: ignore[arg-type]


def assert_nothing_left(sim: DigitalOceanSim) -> None:
    assert sim.droplets == {}
    assert sim.keys == {}


# -- reads ----------------------------------------------------------------------------


def test_sizes_regions_and_price(api: DropletApi) -> None:
    sizes = {s.slug: s for s in api.sizes()}
    basic = sizes["s-1vcpu-1gb"]
    assert (basic.vcpus, basic.memory_mb, basic.disk_gb, basic.price_monthly, basic.available) == (1, 1024, 25, 6.0, True)
    assert "fra1" in basic.regions
    assert sizes["s-8vcpu-16gb-old"].available is False

    regions = {r.slug: r for r in api.regions()}
    assert regions["fra1"].name == "Frankfurt 1" and regions["fra1"].available
    assert regions["nyc2"].available is False
    assert "g-2vcpu-8gb" in regions["nyc1"].sizes and "g-2vcpu-8gb" not in regions["lon1"].sizes

    assert api.price("s-2vcpu-4gb") == 24.0
    with pytest.raises(InvalidChoice, match=r"no droplet size 's-99'.*s-1vcpu-1gb") as caught:
        api.price("s-99")
    assert caught.value.exit_code == 2


def test_check_token_returns_the_account_email(api: DropletApi) -> None:
    assert api.check_token() == "sammy@example.com"


def test_lists_follow_the_pagination_links(sim: DigitalOceanSim, api: DropletApi) -> None:
    sim.max_per_page = 3
    assert len(api.sizes()) == len(sim.sizes) == 8
    assert sim.count("GET", "/v2/sizes") == 3  # pages 1..3, linked by links.pages.next


def test_endpoint_from_the_environment(sim: DigitalOceanSim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGITALOCEAN_END_POINT", sim.endpoint)
    assert DropletApi(TOKEN).check_token() == "sammy@example.com"


def test_endpoint_without_trailing_slash_keeps_v2(sim: DigitalOceanSim) -> None:
    assert DropletApi(TOKEN, endpoint=sim.endpoint.rstrip("/")).check_token() == "sammy@example.com"


# -- provisioning ---------------------------------------------------------------------


def test_provision_happy_path(sim: DigitalOceanSim, api: DropletApi) -> None:
    seen: list[dict] = []

    def hook(droplet: dict) -> str:
        seen.append(droplet)
        assert sim.public_keys_of(droplet) == [PUBLIC_KEY]
        return "127.0.0.7"

    sim.provision = hook
    lines: list[str] = []
    info = provision(api, lines, user_data=cloud_init(9443))

    assert info.ip == "127.0.0.7"
    assert (info.name, info.status, info.region, info.size) == ("tb-one", "active", "nyc3", "s-1vcpu-1gb")
    assert info.tags == ("tbx", "tbx-toolbox-tb0001")
    assert len(seen) == 1 and seen[0]["id"] == info.id

    (key,) = sim.keys.values()
    assert key["name"] == "tb-one" and key["public_key"] == PUBLIC_KEY  # named like the droplet
    assert key["fingerprint"] == key_fingerprint(PUBLIC_KEY)
    droplet = sim.droplets[info.id]
    assert droplet["ssh_keys"] == [key["id"]]
    assert droplet["tags"] == ["tbx", "tbx-toolbox-tb0001"]
    assert droplet["user_data"] == cloud_init(9443)
    assert droplet["image"]["slug"] == "ubuntu-24-04-x64"

    assert lines[0] == "registering SSH key tb-one"
    assert lines[1] == "creating droplet tb-one (s-1vcpu-1gb in nyc3)"
    assert f"droplet {info.id} is new" in lines
    assert lines[-1] == "active at 127.0.0.7"


def test_bad_token_is_a_clear_error_and_creates_nothing(sim: DigitalOceanSim) -> None:
    api = DropletApi("dop_v1_wrong", endpoint=sim.endpoint)
    with pytest.raises(TokenRejected, match=r"refused the API token; create a new one at cloud\.digitalocean\.com"):
        api.check_token()
    with pytest.raises(TokenRejected):
        provision(api)
    assert_nothing_left(sim)
    assert sim.count("POST", "/v2") == 0


def test_empty_token_is_refused_up_front() -> None:
    with pytest.raises(TokenRejected, match="no DigitalOcean API token"):
        DropletApi("  ")


def test_droplet_limit_is_a_quota_error_and_the_key_is_removed(sim: DigitalOceanSim, api: DropletApi) -> None:
    sim.droplet_limit = 0
    with pytest.raises(QuotaExceeded, match="droplet limit") as caught:
        provision(api)
    assert caught.value.status == 422
    assert sim.count("POST", "/v2/account/keys") == 1  # it was registered, then deleted
    assert_nothing_left(sim)


def test_unknown_region_and_size_list_the_valid_ones(sim: DigitalOceanSim, api: DropletApi) -> None:
    with pytest.raises(InvalidChoice, match=r"no region 'mars1'.*--region.*fra1") as caught:
        provision(api, region="mars1")
    assert "nyc2" not in str(caught.value)  # closed to new droplets
    with pytest.raises(InvalidChoice, match=r"no droplet size 's-64vcpu'.*--size.*s-1vcpu-1gb"):
        provision(api, size="s-64vcpu")
    with pytest.raises(InvalidChoice, match=r"g-2vcpu-8gb is not available in lon1; pick a region among fra1, nyc1, nyc3"):
        provision(api, size="g-2vcpu-8gb", region="lon1")
    assert sim.count("POST", "/v2") == 0


def test_api_refusal_during_create_removes_the_key(sim: DigitalOceanSim, api: DropletApi,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The image is retired between the check and the create."""
    monkeypatch.setattr(api, "check_image", lambda slug, region: None)
    sim.retired.add("ubuntu-24-04-x64")
    with pytest.raises(DigitalOceanError, match="invalid image") as caught:
        provision(api)
    assert caught.value.status == 422
    assert_nothing_left(sim)


def test_slow_in_new_times_out_and_cleans_up(sim: DigitalOceanSim, api: DropletApi) -> None:
    """The clean-up waits for the create to end (the droplet refuses deletion until then)."""
    sim.active_after = 1.0
    lines: list[str] = []
    started = time.monotonic()
    with pytest.raises(ProvisionTimeout, match=r"droplet \d+ was still 'new' after 0.4s") as caught:
        provision(api, lines, timeout=0.4)
    assert time.monotonic() - started < 4
    assert_nothing_left(sim)
    (gone,) = sim.deleted
    assert str(gone["id"]) in str(caught.value) and "could not be deleted" not in str(caught.value)
    assert lines[-1] == "deleting SSH key tb-one" and f"deleting droplet {gone['id']}" in lines


def test_creation_failed_halfway_is_cleaned_up(sim: DigitalOceanSim, api: DropletApi) -> None:
    sim.fail_provision = True
    deprovisioned: list[int] = []
    sim.deprovision = lambda d: deprovisioned.append(d["id"])
    with pytest.raises(ProvisionFailed, match="create action errored"):
        provision(api)
    assert_nothing_left(sim)
    assert deprovisioned == [sim.deleted[0]["id"]]


def test_a_failing_provision_hook_errors_the_droplet_and_it_is_cleaned_up(sim: DigitalOceanSim, api: DropletApi) -> None:
    def broken(droplet: dict) -> str:
        raise RuntimeError("sshd would not start")

    sim.provision = broken
    with pytest.raises(ProvisionFailed):
        provision(api)
    assert [str(e) for e in sim.hook_errors] == ["sshd would not start"]
    assert_nothing_left(sim)


def test_keyboard_interrupt_cleans_up_then_propagates(sim: DigitalOceanSim, api: DropletApi) -> None:
    sim.active_after = 0.5

    def progress(line: str) -> None:
        if line.endswith(" is new"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        provision(api, progress=progress)
    assert_nothing_left(sim)
    assert len(sim.deleted) == 1


def test_a_key_registered_before_is_reused_and_kept(sim: DigitalOceanSim, api: DropletApi) -> None:
    answer = requests.post(
        f"{sim.endpoint}account/keys",
        json={"name": "left over", "public_key": PUBLIC_KEY},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert answer.status_code == 201
    key_id = answer.json()["ssh_key"]["id"]

    sim.active_after = 0.6
    with pytest.raises(ProvisionTimeout):
        provision(api, timeout=0.2)
    assert sim.deleted[0]["ssh_keys"] == [key_id]
    assert list(sim.keys) == [key_id]  # not ours to delete
    assert sim.droplets == {}


def test_malformed_public_key_is_refused_before_anything_is_created(sim: DigitalOceanSim, api: DropletApi) -> None:
    with pytest.raises(InvalidChoice, match="SSH public key"):
        provision(api, public_key="not a key")
    assert sim.requests == []


# -- rate limits ----------------------------------------------------------------------


def test_rate_limit_is_waited_out_honouring_retry_after(sim: DigitalOceanSim, api: DropletApi) -> None:
    sim.rate_limit_next = 1  # Retry-After: 1
    started = time.monotonic()
    assert api.price("s-1vcpu-1gb") == 6.0
    assert time.monotonic() - started >= 0.95
    assert sim.count("GET", "/v2/sizes") == 2


def test_rate_limit_during_provision_is_retried(sim: DigitalOceanSim, api: DropletApi) -> None:
    sim.retry_after = 0
    sim.rate_limit_next = 3
    info = provision(api)
    assert info.status == "active"
    assert sim.rate_limit_next == 0


def test_persistent_rate_limit_gives_up_after_the_retries(sim: DigitalOceanSim) -> None:
    sim.retry_after = 0
    sim.rate_limit_next = 100
    api = DropletApi(TOKEN, endpoint=sim.endpoint, rate_limit_retries=2)
    with pytest.raises(RateLimited, match="token is being rate-limited; wait a few seconds and try again"):
        api.sizes()
    assert sim.count("GET", "/v2/sizes") == 3


def test_rate_limit_wait_beyond_the_budget_fails_at_once(sim: DigitalOceanSim) -> None:
    sim.retry_after = 30
    sim.rate_limit_next = 1
    api = DropletApi(TOKEN, endpoint=sim.endpoint, rate_limit_wait=5)
    started = time.monotonic()
    with pytest.raises(RateLimited, match="wait about 30s"):
        api.regions()
    assert time.monotonic() - started < 1


def test_retry_delay_reads_retry_after_or_the_reset_time() -> None:
    assert retry_delay({"Retry-After": "3"}, now=1000.0) == 3.0
    assert retry_delay({"Retry-After": "Thu, 01 Jan 1970 00:16:50 GMT"}, now=1000.0) == 10.0
    assert retry_delay({"ratelimit-reset": "1004"}, now=1000.0) == 4.0
    assert retry_delay({"ratelimit-reset": "900"}, now=1000.0) == 0.0
    assert retry_delay({}, now=1000.0) is None


# -- destroy and listing --------------------------------------------------------------


def test_destroy_is_idempotent(sim: DigitalOceanSim, api: DropletApi) -> None:
    deprovisioned: list[int] = []
    sim.deprovision = lambda d: deprovisioned.append(d["id"])
    info = provision(api)
    fingerprint = key_fingerprint(PUBLIC_KEY)
    api.destroy(info.id, fingerprint)
    assert_nothing_left(sim)
    api.destroy(info.id, fingerprint)  # both 404 now: still fine
    api.destroy(info.id)
    assert deprovisioned == [info.id]


def test_ours_lists_only_tagged_droplets(sim: DigitalOceanSim, api: DropletApi) -> None:
    first = provision(api, name="tb-a", toolbox_id="a1")
    requests.post(
        f"{sim.endpoint}droplets",
        json={"name": "someone-else", "region": "fra1", "size": "s-1vcpu-1gb", "image": "debian-12-x64", "tags": ["web"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    ).raise_for_status()
    other_key = PUBLIC_KEY.replace("GKJl", "GKJm")
    second = provision(api, name="tb-b", toolbox_id="b2", public_key=other_key)
    assert len(sim.droplets) == 3
    ours = {d.id: d for d in api.ours()}
    assert set(ours) == {first.id, second.id}
    assert ours[second.id].tags == ("tbx", "tbx-toolbox-b2")
    assert ours[first.id].ip == "127.0.0.1"


# -- the network ----------------------------------------------------------------------


def test_unreachable_api_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    api = DropletApi(TOKEN, endpoint=f"http://127.0.0.1:{port}/v2/")
    with pytest.raises(Unreachable, match=rf"cannot reach the DigitalOcean API at 127\.0\.0\.1:{port}"):
        api.check_token()


def test_a_silent_api_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # accepts connections into the backlog, never answers
        port = listener.getsockname()[1]
        api = DropletApi(TOKEN, endpoint=f"http://127.0.0.1:{port}/v2/", request_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(Unreachable, match=r"did not answer GET /v2/account/ within 0.3s"):
            api.check_token()
        assert time.monotonic() - started < 2


# -- secrets --------------------------------------------------------------------------


def test_the_token_never_appears_in_errors_logs_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    with DigitalOceanSim(token=CANARY) as sim:
        sim.active_after = 0.05
        api = DropletApi(CANARY, endpoint=sim.endpoint, rate_limit_retries=1)
        messages.append(repr(api))
        info = provision(api, lines=messages)
        sim.retry_after = 0
        sim.rate_limit_next = 5
        for failing in (api.sizes, lambda: provision(api, name="tb-two")):
            with pytest.raises(TbxError) as caught:
                failing()
            messages.append(str(caught.value))
        sim.rate_limit_next = 0
        sim.droplet_limit = 1
        with pytest.raises(QuotaExceeded) as caught:
            provision(api, name="tb-three", public_key=PUBLIC_KEY.replace("GKJl", "GKJn"))
        messages.append(str(caught.value))
        sim.stick_in_new, sim.droplet_limit = True, None
        with pytest.raises(ProvisionTimeout) as caught:  # and it cannot be deleted: kept
            provision(api, name="tb-four", timeout=0.1, public_key=PUBLIC_KEY.replace("GKJl", "GKJo"),
                      destroy_budget=0.2, destroy_poll=0.05)
        messages.append(str(caught.value))
        api.destroy(info.id, key_fingerprint(PUBLIC_KEY))
        with pytest.raises(TokenRejected) as caught:
            DropletApi(CANARY + "x", endpoint=sim.endpoint).check_token()
        messages.append(str(caught.value))
    assert len(messages) > 8
    assert "Bearer TOKEN0" in caplog.text  # the library logged its headers at DEBUG, token masked
    for text in [*messages, caplog.text]:
        assert CANARY not in text
        assert CANARY[8:] not in text


# -- cloud-init -----------------------------------------------------------------------


def test_cloud_init_is_a_cloud_config_that_sets_up_docker_and_nothing_else() -> None:
    text = cloud_init()
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    assert doc["package_update"] is True
    assert doc["packages"] == ["docker.io", "ufw"]
    assert doc["ssh_pwauth"] is False
    commands = [" ".join(str(part) for part in step) for step in doc["runcmd"]]
    assert "install -d -m 0700 -o root -g root /var/lib/tbx" in commands
    assert "systemctl enable --now docker" in commands
    assert commands[-1] == f"touch {READY_MARKER}"
    # Firewall: deny in by default, then exactly SSH and the gateway port, enabled before Docker starts.
    assert commands.index("ufw default deny incoming") < commands.index("ufw --force enable")
    assert [c for c in commands if c.startswith("ufw allow")] == ["ufw allow 22/tcp", "ufw allow 8443/tcp"]
    assert commands.index("ufw --force enable") < commands.index("systemctl enable --now docker")
    assert set(doc) == {"package_update", "packages", "ssh_pwauth", "runcmd"}


def test_cloud_init_gateway_port() -> None:
    doc = yaml.safe_load(cloud_init(9000))
    assert ["ufw", "allow", "9000/tcp"] in doc["runcmd"]
    for bad in (0, 22, 70000):
        with pytest.raises(ValueError):
            cloud_init(bad)
    with pytest.raises(TypeError):
        cloud_init("8443")  # type: ignore[arg-type]


def test_key_fingerprint_matches_openssh_md5(tmp_path: Path) -> None:
    path = tmp_path / "k.pub"
    path.write_text(PUBLIC_KEY + "\n")
    out = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", str(path)], capture_output=True, text=True, check=True)
    assert f"MD5:{key_fingerprint(PUBLIC_KEY)}" in out.stdout
