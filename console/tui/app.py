"""``tbx``: the console. Screens switch with the digit keys; everything slow runs in workers."""

from __future__ import annotations

import asyncio
import gc
import importlib
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual import events, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from console.errors import TbxError
from console.tui.backend import Backend
from console.tui.commands import ConsoleCommands
from console.tui.messages import VaultChanged, VaultCommitted
from console.tui.modals.error import ErrorModal
from console.tui.remote_links import LinkChanged, LinkState, RemoteLinks
from console.tui.screens import APPROVALS, SCREENS
from console.tui.themes import DEFAULT_THEME, load_themes, shipped_themes_dir
from console.tui.warmup import WarmUp

if TYPE_CHECKING:
    from pathlib import Path

    from textual.timer import Timer

    from console.runtime.supervisor import Health, Supervisor
    from console.tui.approvals_feed import ApprovalsFeed, Reach
    from console.workspace import Commit, Workspace

REMOTE_SYNC_DELAY = 0.3
"""Seconds of quiet after a vault change before remote toolboxes get the new policy."""
REMOTE_TOKENS_EVERY = 30.0
"""How often the console looks for tokens of remote toolboxes' servers about to expire."""
EARLY_OPEN_WAIT = 0.5
"""Seconds the console waits for a vault opening by itself before it shows the unlock screen."""


class ConsoleApp(App[None]):
    CSS_PATH = "console.tcss"
    TITLE = "Toolbox Console"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    COMMAND_PALETTE_BINDING = "colon"
    MODES: ClassVar[dict[str, object]] = {spec.mode: spec.factory() for spec in (*SCREENS, APPROVALS)}  # type: ignore[misc]
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(spec.key, f"goto('{spec.mode}')", spec.title, id=f"nav.{spec.mode}", show=False,
                  tooltip=f"Switch to {spec.title}") for spec in (*SCREENS, APPROVALS)),
        Binding("question_mark", "help", "Help", id="app.help", tooltip="Every key and its binding id"),
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Leave the console (servers and the gateway keep running)"),
        Binding("escape", "back", "Back", id="app.back", show=False, tooltip="Close what is open, or go back"),
    ]

    toolbox_name: reactive[str] = reactive("local")
    """The toolbox the Servers, Tools, Grants and Try screens show."""
    engine_description: reactive[str] = reactive("")
    engine_missing: reactive[str] = reactive("")
    gateway_description: reactive[str] = reactive("")
    gateway_problem: reactive[str] = reactive("")
    """Why the running gateway does not work as it should (shown in red), or empty."""
    approvals_waiting: reactive[int] = reactive(0)
    """Calls held for the owner by the local gateway (the header counts them)."""
    approvals_version: reactive[int] = reactive(0)
    """Counts changes to ``approvals`` (the Approvals screen follows it)."""

    def __init__(self, backend: Backend | None = None, *, live: bool = True) -> None:
        """``live=False`` turns off everything that polls (engine, gateway, supervisor,
        vault watch): for snapshot tests and screenshots, whose output must be stable."""
        super().__init__()
        self.backend = backend or Backend()
        self.live = live
        self.health_signal: Signal[Health] = Signal(self, "health")
        self.supervisors: dict[str, Supervisor] = {}
        self.seen_there: dict[str, Health] = {}
        """Remote toolboxes' remote servers, as their gateways see them."""
        self.link_signal: Signal[LinkState] = Signal(self, "link")
        """Every change of a remote toolbox's SSH link (``link_status`` gives the latest)."""
        self.links = RemoteLinks(self, self._link_changed)
        self._remote_sync: Timer | None = None
        self.remote_sync_lock = threading.Lock()
        """Held while policy is pushed to remote toolboxes: one push at a time, in order."""
        self.user_themes: set[str] = set()
        self._opened = False
        self._unfollow_vault: Callable[[], None] | None = None
        self.warm_up = WarmUp(self)
        """Makes the screens not shown yet, after the first paint, while nobody types."""
        self.debug_log: Path | None = None
        """Where this run logs (``tbx --debug``): named in a notification at start."""
        self.approvals: list[dict[str, object]] = []
        """The held calls as the gateways last listed them, oldest first."""
        self.approval_feeds: dict[str, ApprovalsFeed] = {}
        """By toolbox name: the local gateway's, and each remote toolbox's over its link."""
        self._held_by_toolbox: dict[str, list[dict[str, object]]] = {}

    # -- start-up ----------------------------------------------------------------------

    async def on_mount(self) -> None:
        self._load_themes()
        self._apply_keymap()
        backend = self.backend
        opening = backend.open_early()
        if opening is not None:
            # Most often opened by now, or about to be: straight to the console, with no
            # unlock screen drawn for an instant. A slow keyring gets the unlock screen,
            # which waits for the same opening.
            await asyncio.wait([asyncio.wrap_future(opening)], timeout=EARLY_OPEN_WAIT)
            if opening.done() and opening.exception() is None:
                backend.open_vault()
        if backend.ws is not None:
            self._show_console(backend.ws)
        elif backend.vault_exists():
            from console.tui.screens.unlock import UnlockScreen

            self.push_screen(UnlockScreen(str(backend.paths.vault), backend.needs_passphrase()), self._show_console)
        else:
            from console.tui.screens.setup import SetupScreen

            self.push_screen(SetupScreen(backend.keyring_usable()), self._show_console)

    def on_ready(self) -> None:
        if self.debug_log is not None:
            # Log lines written to the terminal would draw over the screen: they go to a file.
            self.notify(f"debug log: {self.debug_log}", title="tbx --debug", timeout=20)

    def _load_themes(self) -> None:
        shipped = load_themes(shipped_themes_dir())
        user = load_themes(self.backend.paths.themes_dir)
        for theme in shipped.themes:
            self.register_theme(theme)
        for theme in user.themes:
            self.register_theme(theme)
            self.user_themes.add(theme.name)
        for problem in shipped.problems + user.problems:
            self.notify(problem, severity="warning", timeout=10)
        wanted = self.backend.ui_state().get("theme", DEFAULT_THEME)
        self.theme = wanted if wanted in self.available_themes else DEFAULT_THEME

    def _apply_keymap(self) -> None:
        keys = self.backend.settings.tui.keys
        if keys:
            self.set_keymap(keys)
            self._check_keymap(dict(keys))

    @work(thread=True, exit_on_error=False, group="keymap")
    def _check_keymap(self, keys: dict[str, str]) -> None:
        """Textual ignores an id no binding has: a typo would leave its key as it was, silently."""
        from console.tui.keymap import describe_unknown

        problem = describe_unknown(keys)
        if problem:
            self.notify(problem, severity="warning", timeout=20)  # a message: safe from any thread

    def _show_console(self, ws: Workspace | None) -> None:
        """The vault is open (the unlock or first-run screen's result): show the console and
        start following what is live."""
        if ws is None:
            return
        self._unfollow_vault = ws.on_commit(self._vault_committed)
        self._opened = True
        self._keep_toolbox_in_view()
        remembered = self.backend.ui_state().get("screen", "toolboxes")
        self.switch_mode(remembered if remembered in self.MODES else "toolboxes")
        # Everything alive now (widgets, the vault's tables) lives as long as the console:
        # keep full collections from walking it, so they cannot stall a keystroke. Then
        # collect again (tbx pauses collections while the console starts: console/cli).
        self.call_after_refresh(gc.freeze)
        self.call_after_refresh(gc.enable)
        if self.live:
            self.warm_up.noticed_input()  # the first paint is read before anything heavy starts
            self.call_after_refresh(self.run_worker, self.warm_up.run(), group="warm-up", exit_on_error=False)
            self.check_engine()
            self.check_gateway()
            self.call_after_refresh(self.look_for_orphans)
            self.set_interval(1.0, self._poll_vault)
            self.follow_approvals()
            self.set_interval(5.0, self.check_gateway)
            self.set_interval(5.0, self.check_landings)
            self.set_interval(5.0, self.follow_droplet_servers)
            self.set_interval(REMOTE_TOKENS_EVERY, self.keep_remote_tokens)
            self.supervise()
        else:
            self.engine_description = "engine: not checked"

    # -- calls waiting for the owner -----------------------------------------------------

    def follow_approvals(self) -> None:
        """Follow the held calls of the local gateway and of every remote toolbox's (over
        its link): the header's counter, a bell and a toast for each new one on whatever
        screen is in front, the Approvals screen's list."""
        from console.tui import approvals_feed

        self._follow_held("local", approvals_feed.local(self.backend))
        self.follow_remote_approvals()

    def follow_remote_approvals(self) -> None:
        from console.tui import approvals_feed

        for box in self.backend.workspace.repos.toolboxes:
            if box.is_remote and box.name not in self.approval_feeds:
                link = (lambda box_id: lambda: self.links.usable(box_id))(box.id)
                self._follow_held(box.name, approvals_feed.remote(self.backend, box, link))

    def _follow_held(self, toolbox: str, reach: Reach) -> None:
        from console.tui.approvals_feed import ApprovalsFeed

        feed = self.approval_feeds[toolbox] = ApprovalsFeed(reach)
        self.run_worker(feed.run(lambda pending: self._approvals_changed(toolbox, pending)),
                        group=f"approvals:{toolbox}", exclusive=True, exit_on_error=False)

    def approval_gateway(self, toolbox: str):  # noqa: ANN201 - a GatewayApprovals, or None
        """Where a decision on a call held by ``toolbox``'s gateway goes."""
        feed = self.approval_feeds.get(toolbox)
        return feed.gateway if feed is not None else None

    def _approvals_changed(self, toolbox: str, pending: list[dict[str, object]]) -> None:
        known = {call["id"] for call in self.approvals}
        self._held_by_toolbox[toolbox] = pending
        pending = sorted((call for held in self._held_by_toolbox.values() for call in held),
                         key=lambda call: float(call.get("created") or 0))  # type: ignore[arg-type]
        self.approvals = pending
        self.approvals_waiting = len(pending)
        self.approvals_version += 1
        new = [call for call in pending if call["id"] not in known]
        if new:
            self.bell()
            first = new[0]
            more = f" (and {len(new) - 1} more)" if len(new) > 1 else ""
            self.notify(f"{first['agent']} wants {first['target']}{more}: 0 shows what and decides",
                        title="A call waits for you", severity="warning", timeout=10)

    # -- navigation --------------------------------------------------------------------

    def action_goto(self, mode: str) -> None:
        self.goto(mode)

    def goto(self, mode: str) -> None:
        if not self._opened:
            return
        self.switch_mode(mode)
        self._remember(screen=mode)

    @work(thread=True, exit_on_error=False, group="remember")
    def _remember(self, **values: str) -> None:
        """Written off the loop: a busy disk does not hold a key."""
        self.backend.remember(**values)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown)):
            self.warm_up.noticed_input()
        await super().on_event(event)

    async def run_on_screen(self, mode: str, action: str) -> None:
        if not self._opened:
            return
        await self.switch_mode(mode)
        await self.screen.run_action(action)

    def action_help(self) -> None:
        from console.tui.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_back(self) -> None:
        if len(self.screen_stack) > 1 and self._opened:
            self.pop_screen()

    def use_theme(self, name: str) -> None:
        self.theme = name
        self._remember(theme=name)

    # -- the vault, followed -------------------------------------------------------------

    def _keep_toolbox_in_view(self) -> None:
        """The Servers, Tools, Grants and Try screens show a toolbox that exists: the one
        they showed, else ``local``, else the first by name (a vault whose only toolbox has
        another name opens on it, not on "no toolbox named local")."""
        names = sorted(box.name for box in self.backend.workspace.repos.toolboxes)
        if names and self.toolbox_name not in names:
            self.toolbox_name = "local" if "local" in names else names[0]

    def _vault_committed(self, commit: Commit) -> None:
        """The workspace's listener, on the thread that changed the vault: over to the loop."""
        self.post_message(VaultCommitted(commit))

    def on_vault_committed(self, message: VaultCommitted) -> None:
        """Tell the screens in front to re-read (those of other modes re-read when they come
        back); supervisors and remote toolboxes follow what they watch."""
        self._keep_toolbox_in_view()
        for screen in self.screen_stack:  # the screen under a dialog too: it shows through
            screen.post_message(VaultChanged())
        if message.commit.records_only:
            return
        if self.supervisors:
            from console.services.supervision import sync_supervisor

            for toolbox_id, supervisor in list(self.supervisors.items()):
                sync_supervisor(supervisor, self.backend.workspace, toolbox_id)
        if self.live and self._opened:
            self.supervise()
            self._sync_remote_soon()

    @work(thread=True, exclusive=True, exit_on_error=False, group="vault")
    def _poll_vault(self) -> None:
        """Another process (the CLI, a gateway) wrote the vault: read it again, off the loop
        (a stat of a file, and when it changed, megabytes decrypted); the workspace tells."""
        self.backend.workspace.refresh()

    # -- engine, gateway, health -----------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="engine")
    def check_engine(self) -> None:
        status = self.backend.engine_status()
        if status.reachable:
            description, missing = f"engine: Docker {(status.version or '?').split('+')[0]}", ""
        else:
            description = "engine: none"
            missing = (f"No Docker engine at {status.endpoint} ({status.error}). Servers cannot run until one "
                       f"does; everything else works. 'tbx doctor' says what to fix.")
        self.call_from_thread(setattr, self, "engine_description", description)
        self.call_from_thread(setattr, self, "engine_missing", missing)

    @work(thread=True, exclusive=True, exit_on_error=False, group="orphans")
    def look_for_orphans(self) -> None:
        """Droplets billed that no toolbox owns: asked of DigitalOcean once, after the first
        paint; new ones land in the vault (the Toolboxes screen follows its commits)."""
        from console.services.droplet_orphans import look, offer

        said = offer(look(self.backend.workspace))
        if said:
            self.notify(said, title="droplets no toolbox owns", severity="warning", timeout=30)

    @work(thread=True, exclusive=True, exit_on_error=False, group="gateway-status")
    def check_gateway(self) -> None:
        info = self.backend.gateway_info("local")
        text = f"gateway: {info.url}/mcp" if info else "gateway: stopped"
        self.call_from_thread(setattr, self, "gateway_description", text)
        problem = f"Gateway: {info.problems[0]}" if info and info.problems else ""
        self.call_from_thread(setattr, self, "gateway_problem", problem)

    def action_gateway_start(self) -> None:
        self._gateway(start=True)

    def action_gateway_stop(self) -> None:
        self._ask_to_stop_gateway()

    @work(thread=True, exclusive=True, exit_on_error=False, group="gateway-ask")
    def _ask_to_stop_gateway(self) -> None:
        """Stopping the gateway cuts every connected agent off: with agents connected, ask
        first and name them (stopping one server asks too); with none, just stop."""
        from console.services.grants import agent_list

        info = self.backend.gateway_info("local")
        repos = self.backend.workspace.repos
        names = sorted((agent.name if (agent := repos.agents.get(i)) else i) for i in (info.agents if info else ()))
        if not names:
            self.call_from_thread(self._gateway, False)
            return
        from console.tui.modals.confirm import ConfirmModal

        count = f"{len(names)} agent{'s are' if len(names) > 1 else ' is'}"
        modal = ConfirmModal("Stop the gateway?",
                             f"{count} connected ({agent_list(names)}). Stopping cuts {'them' if len(names) > 1 else 'it'} "
                             f"off at once: no tools until the gateway is started again (g on Toolboxes).",
                             confirm="Stop gateway")
        self.call_from_thread(self.push_screen, modal, lambda yes: self._gateway(False) if yes else None)

    @work(thread=True, exclusive=True, exit_on_error=False, group="gateway")
    def _gateway(self, start: bool) -> None:
        self.call_from_thread(setattr, self, "gateway_description",
                              "gateway: starting…" if start else "gateway: stopping…")
        try:
            if start:
                info = self.backend.start_gateway("local")
                self.notify(f"gateway serving agents at {info.url}/mcp")
            else:
                self.backend.stop_gateway("local")
                self.notify("gateway stopped")
        finally:
            self.check_gateway()

    def supervise(self) -> None:
        """Live health for every toolbox: one supervisor each, started as they appear —
        over the local engine, or over a remote toolbox's SSH tunnel once it is open."""
        boxes = list(self.backend.workspace.repos.toolboxes)
        self.links.follow(boxes)
        for box in boxes:
            if box.id not in self.supervisors and (not box.is_remote or self.links.endpoint(box.id)):
                self._supervise(box.id, self._engine_of(box.id))

    def _engine_of(self, toolbox_id: str) -> str | None:
        box = self.backend.workspace.repos.toolboxes.get(toolbox_id)
        if box is None or not box.is_remote:
            return box.engine_endpoint if box else None
        return self.links.endpoint(toolbox_id)

    @work(exit_on_error=False, group="supervise")
    async def _supervise(self, toolbox_id: str, endpoint: str | None) -> None:
        # The MCP SDK and docker-py take a good part of a second to import: do it off the
        # UI thread, once the first frame has been quiet a moment, so no key waits on it.
        await self.warm_up.quiet()
        await asyncio.to_thread(importlib.import_module, "console.services.supervision")
        from console.runtime.enginehttp import Endpoint
        from console.runtime.supervisor import Supervisor
        from console.services.supervision import watched_servers

        ws = self.backend.workspace
        box = ws.repos.toolboxes.get(toolbox_id)
        if box is None or toolbox_id in self.supervisors:
            return
        supervisor = Supervisor(Endpoint.parse(endpoint), watched_servers(ws, box.id))
        supervisor.on_change(self.health_signal.publish)
        self.supervisors[box.id] = supervisor
        try:
            async with supervisor:
                # A remote toolbox's tunnel replaced (re-added, re-pinned): a new supervisor follows.
                while ws.repos.toolboxes.get(toolbox_id) is not None and self._engine_of(toolbox_id) == endpoint:
                    await asyncio.sleep(2.0)
        finally:
            self.supervisors.pop(toolbox_id, None)
        self.supervise()

    # -- remote toolboxes: links and policy ---------------------------------------------------

    def link_status(self, toolbox_id: str) -> LinkState | None:
        """The SSH link of a remote toolbox (None: local, or no link tried yet)."""
        return self.links.state(toolbox_id)

    def link_endpoint(self, toolbox_id: str) -> str | None:
        """The remote engine as a local socket while the toolbox's link is up."""
        return self.links.endpoint(toolbox_id) if self.links.usable(toolbox_id) else None

    def on_link_changed(self, message: LinkChanged) -> None:
        self.links.reported(message)

    def _link_changed(self, state: LinkState) -> None:
        self.link_signal.publish(state)
        if state.up and self.live:
            self.supervise()
            self.follow_remote_approvals()
            self._sync_remote_soon()  # what changed while the link was down goes now

    def _sync_remote_soon(self) -> None:
        """Debounced: a burst of grant changes becomes one push per remote toolbox."""
        if not any(box.is_remote for box in self.backend.workspace.repos.toolboxes):
            return
        if self._remote_sync is not None:
            self._remote_sync.stop()
        self._remote_sync = self.set_timer(REMOTE_SYNC_DELAY, self._sync_remote)

    @work(thread=True, exit_on_error=False, group="remote-sync")
    def _sync_remote(self) -> None:
        """Push the policy to every remote toolbox whose policy changed, all at once (over
        the console's open tunnels where it has them), say loudly where a change that takes
        access away did not land, and pull the gateways' audit records."""
        from console.remote.audit_pull import pull_audit
        from console.remote.push import describe_failure, push_changes

        with self.remote_sync_lock:
            ws = self.backend.workspace
            remote = [b for b in ws.repos.toolboxes if b.is_remote]
            tunnels = {b.id: t for b in remote if (t := self.links.usable(b.id)) is not None}
            report = push_changes(ws, tunnels=tunnels)
            if report.failed:
                severity = "error" if report.removal_failed else "warning"
                self.notify(describe_failure(report), severity=severity, timeout=15)
            for box in remote:
                if box.id in tunnels:
                    try:
                        pull_audit(ws, box, tunnels[box.id])
                    except TbxError as exc:
                        self.notify(f"toolbox {box.name}: audit records not pulled: {exc}", severity="warning",
                                    timeout=10)
        self.call_from_thread(self._redraw)

    @work(thread=True, exclusive=True, exit_on_error=False, group="remote-landings")
    def check_landings(self) -> None:
        """A change a background retry brought to a toolbox since: audited (the screens
        re-read as for any vault change), and said."""
        from console.remote.push import record_late_landings

        for name in record_late_landings(self.backend.workspace):
            self.notify(f"the pending policy change landed on toolbox {name}", severity="information", timeout=10)

    @work(thread=True, exclusive=True, exit_on_error=False, group="droplet-health")
    def follow_droplet_servers(self) -> None:
        """Remote toolboxes' remote servers, as their gateways see them (``droplet_health``)."""
        from console.tui.droplet_health import seen_from_toolboxes

        for health in seen_from_toolboxes(self.backend.workspace, self.links.usable, self.seen_there):
            self.call_from_thread(self.health_signal.publish, health)

    @work(thread=True, exclusive=True, exit_on_error=False, group="remote-tokens")
    def keep_remote_tokens(self) -> None:
        """A remote toolbox's gateway holds no refresh token: the console refreshes the
        tokens its servers use before they expire, and the commit that keeps a new one
        pushes it there (``_sync_remote_soon``)."""
        from console.services.connection_upkeep import keep_fresh

        ws = self.backend.workspace
        remote = {b.id for b in ws.repos.toolboxes if b.is_remote}
        if remote and any(s.connection for s in ws.repos.servers if s.toolbox in remote):
            keep_fresh(ws, remote)

    def _redraw(self) -> None:
        """The screen in front re-reads (the push state changed, not the policy: nothing to push)."""
        self.screen.post_message(VaultChanged())

    async def _shutdown(self) -> None:
        # Textual's own close, whether by q, ctrl+c or a test leaving run_test. It has no
        # hook before it prunes the screens, and a screen pruned half-mounted raises.
        await self.warm_up.stop()
        await super()._shutdown()

    async def on_unmount(self) -> None:
        if self._unfollow_vault is not None:
            self._unfollow_vault()
        await self.links.close_all()

    def health(self, server_id: str) -> Health | None:
        for supervisor in self.supervisors.values():
            found = supervisor.watched(server_id)
            if found is not None:
                return found
        return self.seen_there.get(server_id)

    # -- failures -------------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, TbxError):
            self.notify(str(error), severity="error", timeout=10)
        elif error is not None:
            text = "".join(traceback.format_exception(error))
            self.push_screen(ErrorModal(f"{type(error).__name__} in {event.worker.name}", text))


def run_console(debug_log: Path | None = None) -> BaseException | None:
    """Run the console until it quits; the error it stopped on, if it did (Textual has
    shown that traceback on the terminal by then, and exits as if all went well)."""
    backend = Backend()
    backend.open_early()  # while Textual starts
    app = ConsoleApp(backend)
    app.debug_log = debug_log
    app.run()
    if not app.return_code:
        return None
    return getattr(app, "_exception", None) or RuntimeError(f"the console ended with status {app.return_code}")
