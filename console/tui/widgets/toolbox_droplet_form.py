"""The droplet part of the add-toolbox dialog: API token (when the vault has none),
region and size from the DigitalOcean API with the monthly price of each size.

Regions and sizes are fetched in a thread worker (the API can take seconds); a failure
is shown under the fields, where the user can fix the token and press enter to try
again. The token is typed masked and never shown back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Select, Static

from console.errors import TbxError
from console.tui.widgets.add_server_form import FormProblem

if TYPE_CHECKING:
    from console.remote.droplets import RegionInfo, SizeInfo

DEFAULT_REGION = "fra1"
DEFAULT_SIZE = "s-1vcpu-1gb"
"""As ``console.services.remote_toolboxes`` (not imported here: it would load the API client)."""


@dataclass(frozen=True)
class DropletOptions:
    regions: list[RegionInfo]
    sizes: list[SizeInfo]


@dataclass(frozen=True)
class DropletChoice:
    region: str
    size: str
    price_monthly: float
    token: str | None = field(default=None, repr=False)
    """A token typed here (to keep in the vault), or None when the vault has one."""


def size_label(size: SizeInfo) -> str:
    memory = f"{size.memory_mb // 1024} GiB" if size.memory_mb >= 1024 else f"{size.memory_mb} MiB"
    price = f"${size.price_monthly:.2f}"
    return f"{size.slug:<20} {size.vcpus} vCPU · {memory:>7} · {size.disk_gb:>3} GB  {price:>8}/mo"


class DropletForm(Vertical):
    DEFAULT_CSS = """
    DropletForm { height: auto; }
    DropletForm .row { height: auto; }
    DropletForm .row Label { width: 10; padding: 1 1 0 0; }
    DropletForm Select, DropletForm Input { width: 1fr; }
    DropletForm #droplet-status { padding: 0 0 0 10; height: auto; color: $text-muted; }
    DropletForm #droplet-status.problem { color: $error; }
    """

    def __init__(self, *, needs_token: bool, options: DropletOptions | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.needs_token = needs_token
        self.options = options

    def compose(self) -> ComposeResult:
        # Always there, shown when the vault has no token or DigitalOcean refused the one it has.
        with Horizontal(classes="row", id="token-row") as row:
            row.display = self.needs_token
            yield Label("API token")
            yield Input(password=True, placeholder="dop_v1_…  (kept in the vault; enter loads the options)",
                        id="token")
        with Horizontal(classes="row"):
            yield Label("Region")
            yield Select[str]([], prompt="regions load from DigitalOcean", id="region")
        with Horizontal(classes="row"):
            yield Label("Size")
            yield Select[str]([], prompt="sizes load from DigitalOcean", id="size")
        yield Static("", id="droplet-status")

    def on_mount(self) -> None:
        if self.options is not None:
            self._fill(self.options)
        elif not getattr(self.app, "live", False):
            self._say("regions and sizes come from the DigitalOcean API when the console is live")
        elif self.needs_token:
            self._say("paste a DigitalOcean API token (read and write) and press enter")
        else:
            self.load()

    def _say(self, text: str, problem: bool = False) -> None:
        status = self.query_one("#droplet-status", Static)
        status.update(text)
        status.set_class(problem, "problem")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "token":
            event.stop()
            if event.value.strip():
                self.load(event.value.strip())

    # -- loading ---------------------------------------------------------------------------

    def load(self, token: str | None = None) -> None:
        self._say("loading regions and sizes from DigitalOcean…")
        self._load(token)

    @work(thread=True, exclusive=True, exit_on_error=False, group="droplet-options")
    def _load(self, token: str | None) -> None:
        from console.remote.droplets import DropletApi
        from console.services.remote_toolboxes import api_token

        from console.remote.droplets import TokenRejected

        try:
            api = DropletApi(token or api_token(self.app.backend.workspace) or "")  # type: ignore[attr-defined]
            options = DropletOptions(api.regions(), api.sizes())
        except TokenRejected as exc:
            self.app.call_from_thread(self._ask_token, str(exc))
            return
        except TbxError as exc:
            self.app.call_from_thread(self._say, str(exc), True)
            return
        self.app.call_from_thread(self._fill, options)

    def _ask_token(self, problem: str) -> None:
        self.needs_token = True
        self.query_one("#token-row").display = True
        self._say(f"{problem}. Paste a token and press enter", True)

    def _fill(self, options: DropletOptions) -> None:
        self.options = options
        regions = sorted((r for r in options.regions if r.available), key=lambda r: r.slug)
        region = self.query_one("#region", Select)
        wanted = region.value if isinstance(region.value, str) else DEFAULT_REGION
        region.set_options([(f"{r.slug:<5} {r.name}", r.slug) for r in regions])
        if any(r.slug == wanted for r in regions):
            region.value = wanted
        elif regions:
            region.value = regions[0].slug
        self._fill_sizes()

    def _fill_sizes(self) -> None:
        region = self.query_one("#region", Select).value
        select = self.query_one("#size", Select)
        sizes = self._sizes_in(region if isinstance(region, str) else "")
        wanted = select.value if isinstance(select.value, str) else DEFAULT_SIZE
        select.set_options([(size_label(s), s.slug) for s in sizes])
        if any(s.slug == wanted for s in sizes):
            select.value = wanted
        elif sizes:
            select.value = sizes[0].slug
        self._show_price()

    def _sizes_in(self, region: str) -> list[SizeInfo]:
        if self.options is None:
            return []
        return sorted((s for s in self.options.sizes if s.available and region in s.regions),
                      key=lambda s: (s.price_monthly, s.slug))

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "region":
            self._fill_sizes()
        else:
            self._show_price()

    def _show_price(self) -> None:
        price = self.price
        if price is not None:
            self._say(f"${price:.2f} a month, billed by DigitalOcean until the toolbox is removed (d)")

    # -- the result --------------------------------------------------------------------------

    @property
    def price(self) -> float | None:
        size = self.query_one("#size", Select).value
        region = self.query_one("#region", Select).value
        found = [s for s in self._sizes_in(region if isinstance(region, str) else "") if s.slug == size]
        return found[0].price_monthly if found else None

    def collect(self) -> DropletChoice:
        token = self.query_one("#token", Input).value.strip() if self.needs_token else None
        if self.needs_token and not token:
            raise FormProblem("paste a DigitalOcean API token: cloud.digitalocean.com/account/api/tokens", "token")
        region = self.query_one("#region", Select).value
        size = self.query_one("#size", Select).value
        price = self.price
        if not isinstance(region, str) or not isinstance(size, str) or price is None:
            raise FormProblem("pick a region and a size (they load from DigitalOcean first)", "region")
        return DropletChoice(region, size, price, token)
