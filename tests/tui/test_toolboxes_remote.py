"""Remote toolboxes in the console, against the DigitalOcean simulator whose droplets
are real sshd processes on loopback with this machine's Docker engine behind them:
add through the dialog with its progress, the SSH link's status following drops,
grants reaching the remote gateway, removal destroying the droplet."""

from __future__ import annotations

import random
import re

import pytest
from textual.widgets import Button, DataTable, Log, Select

from console.config import load_settings
from console.model import Secret, ServerInstance, Toolbox, ToolboxKind
from console.remote.policy import digest, policy_tables
from console.remote.push_state import PushState, mirror_root
from console.remote.sshkeys import fingerprint, generate_keypair
from console.remote.tls import fingerprint as tls_fingerprint_of
from console.services import agents, grants
from console.services import remote_toolboxes as remote
from console.services.grants import Target
from console.tui.app import ConsoleApp
from console.tui.backend import Backend
from console.tui.modals.add_toolbox import AddToolboxModal
from console.tui.modals.confirm import ConfirmModal
from console.tui.modals.prompt import PromptModal
from console.tui.widgets.toolbox_detail import ToolboxDetail
from console.tui.widgets.toolbox_link import ssh_fingerprint, tls_fingerprint
from tests.remote.conftest import (  # noqa: F401 - the fixture
    TOKEN,
    Cloud,
    cloud,
    cloud_init_done,
    kept_after_failed_add,
    wipe_toolbox,
)
from tests.support.remote_seed import GATEWAY_CERT, HOST_FINGERPRINT, HOST_KEY, TLS_FINGERPRINT
from tests.support.sshd import Sshd
from tests.support.tui import until

SIZE = (120, 36)
LINK = 3


def cell(app: ConsoleApp, name: str, column: int) -> str:
    table = app.screen.query_one(DataTable)
    return str(table.get_row(name)[column]) if name in table.rows else ""


def activity(app: ConsoleApp) -> str:
    return "\n".join(app.screen.query_one("#activity", Log).lines)


@pytest.fixture
def home(seeded: Backend) -> Backend:
    """The seeded console, building images from the test environment's base image."""
    runtime = load_settings(seeded.paths.config_file).runtime
    seeded.settings.runtime.base_image_python = runtime.base_image_python
    seeded.settings.runtime.base_image_node = runtime.base_image_node
    return seeded


def test_the_console_draws_the_fingerprints_the_remote_code_computes() -> None:
    assert ssh_fingerprint(HOST_KEY) == fingerprint(HOST_KEY) == HOST_FINGERPRINT
    assert tls_fingerprint(GATEWAY_CERT) == tls_fingerprint_of(GATEWAY_CERT) == TLS_FINGERPRINT
    assert ssh_fingerprint("not a key") == "?" and tls_fingerprint("garbage!") == "?"


@pytest.mark.docker
async def test_add_a_droplet_see_its_link_drop_and_come_back_and_grants_arrive(home: Backend, cloud: Cloud) -> None:  # noqa: F811
    ws = home.workspace
    remote.set_api_token(ws, TOKEN)
    app = ConsoleApp(home)
    seen: list[tuple[str, str]] = []
    async with app.run_test(size=SIZE) as pilot:
        # What the table says whenever the link changes: called after the screen's own
        # callback (same node, subscribed later), so the table has been redrawn.
        app.link_signal.subscribe(app.screen, lambda state: seen.append((state.status, cell(app, "cloud", LINK))))
        await pilot.press("a")
        modal = app.screen
        assert isinstance(modal, AddToolboxModal)
        await pilot.press(*"cloud")
        await pilot.click("#kind-droplet")
        size = modal.query_one("#size", Select)
        await until(pilot, lambda: size.value == "s-1vcpu-1gb", 10, "sizes and prices from the API")
        assert "$6.00" in str(modal.query_one("#add", Button).label)
        await pilot.click("#add")

        await until(pilot, lambda: "+cloud" in app.screen.query_one(DataTable).rows, 5, "the pending row")
        await until(pilot, lambda: cell(app, "cloud", LINK) == "up", 60, "the droplet's row with its link up")
        log = activity(app)
        assert "creating droplet tbx-cloud (s-1vcpu-1gb in fra1)" in log and "host key SHA256:" in log
        assert "cloud: added" in log and "+cloud" not in app.screen.query_one(DataTable).rows
        box = ws.repos.toolboxes.require("cloud")
        [droplet] = cloud.sim.droplets.values()
        assert box.droplet_id == droplet["id"] and cell(app, "cloud", 6) == f"{droplet['networks']['v4'][0]['ip_address']}:8443"
        await until(pilot, lambda: box.id in app.supervisors, 10, "a supervisor over the tunnel")
        assert app.link_endpoint(box.id) == app.supervisors[box.id].endpoint.url
        detail = str(app.screen.query_one(ToolboxDetail).render())
        assert "$6.00/month" in detail and tls_fingerprint_of(box.gateway_cert) in detail
        assert fingerprint(box.ssh_host_key) in detail

        # The sshd drops every connection: the link reconnects by itself, the row follows.
        before = len(seen)
        cloud.sshd_of(droplet["id"]).drop_connections()
        await until(pilot, lambda: ("up", "up") in seen[before:], 15, "the link to come back")
        assert ("reconnecting", "reconnecting") in seen[before:], seen[before:]
        assert app.link_status(box.id).up

        # A grant made in the console reaches the droplet's gateway without a manual sync.
        def pushed() -> bool:
            return PushState.read(mirror_root(ws, box)).installed == digest(policy_tables(ws.tables(), box.id))

        await until(pilot, pushed, 15, "the policy pushed when the link came back")
        await until(pilot, lambda: not [w for w in app.workers if w.group == "remote-sync" and not w.is_finished], 10,
                    "the sync to end")
        agents.add_agent(ws, "far")
        grants.grant(ws, "far", Target.parse("cloud"))
        assert not pushed()
        await until(pilot, pushed, 15, "the new policy on the droplet")
        tunnel = app.links.tunnels[box.id]
    # Leaving the console closes its links.
    assert not app.links.tunnels and tunnel.status.value == "down" and tunnel.last_error == "closed"


@pytest.mark.docker
async def test_the_droplet_dialog_asks_for_a_token_when_the_vault_has_none(home: Backend, cloud: Cloud) -> None:  # noqa: F811
    app = ConsoleApp(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        modal = app.screen
        await pilot.press(*"far")
        await pilot.click("#kind-droplet")
        await pilot.pause()
        token = modal.query_one("#token")
        assert token.password and modal.query_one("#token-row").display
        token.value = "dop_v1_wrong"
        token.focus()
        await pilot.press("enter")
        status = modal.query_one("#droplet-status")
        await until(pilot, lambda: "refused the API token" in str(status.render()), 10, "the refusal")
        assert "dop_v1_wrong" not in str(status.render())
        token.value = TOKEN
        await pilot.press("enter")
        await until(pilot, lambda: modal.query_one("#size", Select).value == "s-1vcpu-1gb", 10, "the options")
        assert remote.api_token(home.workspace) is None
        await pilot.press("ctrl+s")
        await until(pilot, lambda: cell(app, "far", LINK) == "up", 60, "the droplet made with the typed token")
        assert remote.api_token(home.workspace) == TOKEN and len(cloud.sim.droplets) == 1
        assert TOKEN not in activity(app) and all(TOKEN not in n.message for n in app._notifications)


@pytest.mark.docker
async def test_removing_a_droplet_toolbox_destroys_the_droplet(home: Backend, cloud: Cloud) -> None:  # noqa: F811
    ws = home.workspace
    remote.set_api_token(ws, TOKEN)
    box = remote.add_droplet(ws, "doomed").toolbox
    app = ConsoleApp(home)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, "doomed", LINK) == "up", 20, "the link up")
        app.screen.query_one(DataTable).move_cursor(row=0)  # doomed, lab, local
        await pilot.press("s")  # sync now
        await until(pilot, lambda: "audit record(s) pulled" in activity(app), 15, "the sync")
        assert re.search(r"doomed: policy (pushed|already current), \d+ audit record\(s\) pulled", activity(app))
        assert PushState.read(mirror_root(ws, box)).installed == digest(policy_tables(ws.tables(), box.id))
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmModal)
        assert f"DESTROYS droplet {box.droplet_id}" in app.screen.body
        await pilot.press("y")
        await until(pilot, lambda: "doomed: removed" in activity(app), 30, "the removal")
        assert "doomed" not in app.screen.query_one(DataTable).rows and ws.repos.toolboxes.by_name("doomed") is None
        assert f"destroying droplet {box.droplet_id}" in activity(app)
        assert [d["id"] for d in cloud.sim.deleted] == [box.droplet_id] and cloud.sim.droplets == {}
        await until(pilot, lambda: box.id not in app.links.tunnels and box.id not in app.supervisors, 5,
                    "the tunnel and supervisor to end")


@pytest.mark.docker
async def test_enter_on_a_kept_droplet_adopts_it_as_a_toolbox(home: Backend, cloud: Cloud) -> None:  # noqa: F811
    ws = home.workspace
    remote.set_api_token(ws, TOKEN)
    droplet_id, address = kept_after_failed_add(ws, cloud, "cloud")
    cloud_init_done(cloud, droplet_id, address)
    key = f"orphan:{droplet_id}"
    app = ConsoleApp(home)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: key in table.rows, 10, "the kept droplet's row")
        assert cell(app, key, LINK) == "billed"
        table.move_cursor(row=table.get_row_index(key))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PromptModal), 5, "the adopt question")
        assert app.screen.query_one("#value").value == "cloud"  # the name it was to have
        await pilot.click("#ok")
        await until(pilot, lambda: cell(app, "cloud", LINK) == "up", 90, "the adopted toolbox with its link up")
        assert key not in app.screen.query_one(DataTable).rows
        assert "tbx-cloud: adopted as toolbox cloud" in activity(app)
        box = ws.repos.toolboxes.require("cloud")
        assert box.droplet_id == droplet_id and cell(app, "cloud", 6) == f"{address}:8443"
        assert ws.repos.orphans.all() == []
        assert any(n.message.startswith("toolbox cloud adopted: gateway https://") for n in app._notifications)


@pytest.fixture
def ssh_host(docker_engine, tmp_path):  # noqa: ANN001, ANN201
    private, public = generate_keypair("tbx-tui-test")
    key = tmp_path / "id_ed25519"
    key.write_text(private)
    key.chmod(0o600)
    sshd = Sshd([public], host=f"127.{random.randint(20, 250)}.8.{random.randint(2, 250)}", port=2222)
    sshd.key_path = key  # type: ignore[attr-defined]
    sshd.start()
    yield sshd
    sshd.close()


@pytest.mark.docker
async def test_adopting_an_ssh_host_asks_to_trust_its_host_key(home: Backend, ssh_host: Sshd) -> None:
    ws = home.workspace
    target = f"root@{ssh_host.host}:{ssh_host.port}"
    app = ConsoleApp(home)
    async with app.run_test(size=SIZE) as pilot:
        async def add(answer: str) -> ConfirmModal:
            await pilot.press("a")
            await pilot.press(*"edge")
            await pilot.click("#kind-ssh")
            await pilot.pause()  # the SSH form is taller: the buttons move down
            app.screen.query_one("#target").value = target
            app.screen.query_one("#key").value = str(ssh_host.key_path)  # type: ignore[attr-defined]
            await pilot.click("#add")
            await until(pilot, lambda: isinstance(app.screen, ConfirmModal), 15, "the host key question")
            question = app.screen
            await pilot.press(answer)
            return question

        refused = await add("n")
        assert fingerprint(ssh_host.host_key_line) in refused.body
        await until(pilot, lambda: "edge: not added" in activity(app), 10, "the refusal")
        assert ws.repos.toolboxes.by_name("edge") is None
        assert any("not accepted; nothing was added" in n.message for n in app._notifications)

        await add("y")
        await until(pilot, lambda: cell(app, "edge", LINK) == "up", 60, "the adopted host's row with its link up")
        box = ws.repos.toolboxes.require("edge")
        try:
            assert box.kind is ToolboxKind.SSH and box.ssh_target == target
            assert cell(app, "edge", 7) == "current"  # the policy the new gateway was started with
            assert fingerprint(box.ssh_host_key) in str(app.screen.query_one(ToolboxDetail).render())
        finally:
            wipe_toolbox(box.id)


@pytest.mark.docker
async def test_an_unreachable_host_shows_down_with_the_reason_and_a_retry(seeded: Backend, docker_engine) -> None:  # noqa: ANN001
    ws = seeded.workspace
    private, _public = generate_keypair("nobody")
    with ws.change() as change:
        secret = change.repos.secrets.put(Secret(name="toolbox/gone/ssh-key", value=private))
        gone = change.repos.toolboxes.put(Toolbox(name="gone", kind=ToolboxKind.SSH, ssh_target="root@127.0.0.1:1",
                                                  ssh_host_key=HOST_KEY, ssh_key=secret.id))
        change.repos.servers.put(ServerInstance(toolbox=gone.id, name="time", catalog_id="time"))
    box = ws.repos.toolboxes.require("gone")
    app = ConsoleApp(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, "gone", LINK) == "down", 20, "the link to be down")
        state = app.link_status(box.id)
        assert state.retry_in == 5.0 and "127.0.0.1:1" in state.error and app.link_endpoint(box.id) is None
        assert box.id not in app.supervisors
        app.screen.query_one(DataTable).move_cursor(row=0)  # gone, lab, local
        await pilot.pause()
        detail = str(app.screen.query_one(ToolboxDetail).render())
        assert "down" in detail and "127.0.0.1:1" in detail and "trying again in 5 s" in detail
        assert private not in detail

        # The Servers screen says why it shows only the vault's data.
        app.toolbox_name = "gone"
        await pilot.press("2")
        await pilot.pause()
        assert "SSH link down: showing the vault's data" in str(app.screen.query_one("#title").render())
