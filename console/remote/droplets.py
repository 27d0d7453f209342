"""DigitalOcean droplets for remote toolboxes, through python-digitalocean.

The library does the HTTP calls, JSON, pagination and objects. Two things it does not
give us: the status code and headers of a failed answer (it raises ``DataReadError`` with
the message alone), and a request timeout other than a process-wide environment
variable. One seam, :class:`_Wire`, mixed into every library object this module creates,
fills both in: it bounds each request, waits out 429 answers within a budget, and turns
every other non-2xx answer into a :class:`DigitalOceanError` whose message says what to
do. Everything here is blocking; callers run it in a thread.

The real API is eventually consistent around a create: a new droplet may answer 404 for
a while, refuse a DELETE while its create runs ("pending event") or accept one without
effect. Waiting and deleting tolerate all three, within bounds; a droplet a failed create
made and that could not be deleted goes to a :class:`Keeper`, never just into a message.

The token never appears in a message, a log line or a repr.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import digitalocean
from digitalocean.baseapi import BaseAPI

from console.remote.do_errors import (  # noqa: F401 - the errors are part of this module's API
    DROPLETS_PAGE,
    TOKEN_PAGE,
    DigitalOceanError,
    DropletBusy,
    InvalidChoice,
    NotDestroyed,
    ProvisionFailed,
    ProvisionTimeout,
    QuotaExceeded,
    RateLimited,
    ResourceGone,
    TokenRejected,
    Unreachable,
    _scrub,
    backoff,
    error_for,
    retry_delay,
)
from console.remote.do_model import (  # noqa: F401 - re-exported
    HOME_TAG,
    TAG,
    TOOLBOX_TAG,
    DropletInfo,
    ImageInfo,
    Keeper,
    Leftover,
    RegionInfo,
    SizeInfo,
    brief,
    check_choice,
    check_image,
    check_names,
    droplet_info,
    image_info,
    key_fingerprint,
)
from console.remote.do_wire import _Account, _Action, _Droplet, _Image, _Manager, _SSHKey, _WireConfig

log = logging.getLogger(__name__)
KEPT = "it is kept: 'tbx toolbox orphans' lists it"
"""What a failed create says of the droplet it could not delete, once a keeper has it."""
INTERRUPTED_CLEANUP = 15.0
"""Seconds a clean-up after Ctrl-C keeps trying to delete the droplet: the user wants out,
and the keeper has it anyway."""

_T = TypeVar("_T", bound=BaseAPI)


def _ignore(_line: str) -> None:
    pass


def _not_placed(droplet_id: int, region: str) -> ProvisionFailed:
    # The droplet may stay, errored, or DigitalOcean may remove it: the clean-up finds out.
    return ProvisionFailed(f"DigitalOcean could not place droplet {droplet_id} in {region} (its create action "
                           "errored); try again later or pick another region")


def _answer_lost(exc: BaseException) -> bool:
    """Whether a create that raised ``exc`` may have made the droplet anyway: no answer, a
    5xx or an interrupt. A 4xx refused it."""
    if isinstance(exc, Unreachable) or not isinstance(exc, Exception):
        return True
    return isinstance(exc, DigitalOceanError) and (exc.status is None or exc.status >= 500)


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
        raise InvalidChoice(f"DigitalOcean has no droplet size {size!r}; choose one of: {brief(s.slug for s in sizes)}")

    def images(self) -> list[ImageInfo]:
        """The distribution images droplets can start from (``?type=distribution``), by slug."""
        with self._library_errors():
            raw = self._make(_Manager).get_images(type="distribution")
        return sorted((image_info(i) for i in raw if i.slug), key=lambda i: i.slug)

    def check_image(self, slug: str, region: str) -> None:
        """``GET /v2/images/{slug}``: raise :class:`InvalidChoice` naming usable images unless
        ``slug`` can start a droplet in ``region``."""
        image = self._make(_Image, slug=slug)
        try:
            with self._library_errors():
                image.load(use_slug=not slug.isdigit())
            found: ImageInfo | None = image_info(image)
        except ResourceGone:
            found = None
        if found is not None and found.status == "available" and region in found.regions:
            return
        check_image(slug, region, found, self.images())

    def ours(self, tag: str = TAG) -> list[DropletInfo]:
        """Every droplet tagged ``tag`` (``tbx``: whatever toolbox it belongs to)."""
        with self._library_errors():
            raw = self._make(_Manager).get_all_droplets(tag_name=tag)
        return [droplet_info(d) for d in raw]

    def named(self, name: str) -> list[DropletInfo]:
        """The droplets called ``name`` (``?name=``: found before their tags apply)."""
        with self._library_errors():
            raw = self._make(_Manager).get_all_droplets(params={"name": name})
        return [droplet_info(d) for d in raw]

    def droplet(self, droplet_id: int) -> DropletInfo:
        """One droplet; :class:`ResourceGone` when the API does not show it."""
        droplet = self._make(_Droplet, id=int(droplet_id))
        with self._library_errors():
            droplet.load()
        return droplet_info(droplet)

    def wait_active(self, droplet_id: int, region: str, *, timeout: float = 300, poll: float = 2.0,
                    progress: Callable[[str], None] = _ignore) -> DropletInfo:
        """Until a droplet made earlier (by a create that did not live to wait) is active."""
        droplet = self._make(_Droplet, id=int(droplet_id))
        return self._wait_active(droplet, None, region, timeout=timeout, poll=poll, not_found_grace=timeout,
                                 progress=progress)

    def _action_status(self, action_id: int | None) -> str | None:
        if action_id is None:
            return None
        action = self._make(_Action, id=action_id)
        with suppress(DigitalOceanError), self._library_errors():
            action.load_directly()
            return str(action.status)
        return None

    # -- deleting

    def destroy(self, droplet_id: int, key_fingerprint: str | None = None, *, fresh: bool = False,
                action_id: int | None = None, budget: float = 180.0, poll: float = 1.0,
                progress: Callable[[str], None] = _ignore) -> None:
        """Delete the droplet, make sure it is gone, then delete its SSH key.

        While its create still runs a droplet refuses the DELETE ("pending event") or takes
        it without effect: it is asked again, with backoff (``poll`` scales it), until the
        API says 404, for at most ``budget`` seconds; then :class:`NotDestroyed`. ``fresh``:
        just created, so a 404 may only mean the API does not show it yet; it counts as gone
        once a DELETE was accepted, or when its create action (``action_id``) errored
        (DigitalOcean removed it)."""
        deadline = time.monotonic() + budget
        accepted, attempt, told, last = False, 0, "", ""
        while True:
            try:
                with self._library_errors():
                    self._make(_Droplet, id=int(droplet_id)).destroy()
                accepted = True
                if self._gone(droplet_id):
                    break
                last = f"DigitalOcean accepted the DELETE of droplet {droplet_id} but still shows it"
                say = f"droplet {droplet_id} still there after its DELETE: asking again"
            except ResourceGone:
                if accepted or not fresh or self._action_status(action_id) == "errored":
                    break
                last = f"the DigitalOcean API does not show droplet {droplet_id} yet"
                say = f"droplet {droplet_id} not visible to the API yet: asking again"
            except DropletBusy as exc:
                last = str(exc)
                say = f"droplet {droplet_id} is busy (pending event): asking again"
            except (Unreachable, RateLimited) as exc:
                last = say = str(exc)
            except DigitalOceanError as exc:
                if exc.status is None or exc.status < 500:
                    raise
                last = say = str(exc)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NotDestroyed(f"droplet {droplet_id} could not be deleted within {budget:g}s: {last}")
            if say != told:
                progress(say)
                told = say
            time.sleep(min(backoff(attempt, poll), remaining))
            attempt += 1
        if key_fingerprint:
            # The droplet is gone: a key left behind costs nothing and must not say otherwise.
            self._delete_key(key_fingerprint, key_fingerprint, _ignore)

    def _gone(self, droplet_id: int) -> bool:
        try:
            self.droplet(droplet_id)
        except ResourceGone:
            return True
        return False

    # -- creating

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
        home: str | None = None,
        timeout: float = 300,
        poll: float = 2.0,
        not_found_grace: float = 60.0,
        destroy_budget: float = 180.0,
        destroy_poll: float = 1.0,
        progress: Callable[[str], None] = _ignore,
        keeper: Keeper | None = None,
    ) -> DropletInfo:
        """Register ``public_key`` (named like the droplet), create the droplet and wait until
        it is active with a public IPv4. Tags: ``tbx``, the toolbox's, the installation's
        (``home``).

        Any failure (API error, errored creation, timeout, KeyboardInterrupt) deletes what
        this call created before the exception propagates; a droplet that cannot be deleted
        within ``destroy_budget`` seconds stays with the ``keeper``, and the error says so.
        """
        tags = [TAG, f"{TOOLBOX_TAG}{toolbox_id}", *([f"{HOME_TAG}{home}"] if home else [])]
        check_names(name, tags)
        key_fingerprint(public_key)  # refuse a malformed key before anything is created
        check_choice(region, size, self.regions(), self.sizes())
        self.check_image(image, region)

        key_id: int | None = None
        key_is_ours = False
        droplet_id: int | None = None
        action_id: int | None = None
        create_sent = False
        try:
            progress(f"registering SSH key {name}")
            key_id, key_is_ours = self._register_key(name, public_key.strip())

            progress(f"creating droplet {name} ({size} in {region})")
            droplet = self._make(_Droplet, name=name, region=region, size_slug=size, image=image,
                                 ssh_keys=[key_id], user_data=user_data, tags=tags)
            create_sent = True
            with self._library_errors():
                droplet.create()
            droplet_id = int(droplet.id)
            action_id = droplet.action_ids[0] if droplet.action_ids else None
            return self._wait_active(droplet, action_id, region, timeout=timeout, poll=poll,
                                     not_found_grace=not_found_grace, progress=progress)
        except BaseException as exc:
            interrupted = not isinstance(exc, Exception)
            if droplet_id is None and create_sent and _answer_lost(exc):
                droplet_id = self._find_created(name, tags[1], 0 if interrupted else not_found_grace, poll)
            key = key_fingerprint(public_key) if key_is_ours else None
            leftover = Leftover(droplet_id, name, region, size, key, str(exc)) if droplet_id is not None else None
            budget = min(destroy_budget, INTERRUPTED_CLEANUP) if interrupted else destroy_budget
            left = self._clean_up(leftover, action_id, key_id if key_is_ours else None, name, keeper,
                                  budget, destroy_poll, progress)
            if left and isinstance(exc, DigitalOceanError):
                where = KEPT if keeper else f"delete it at {DROPLETS_PAGE}"
                raise exc.again(f"{exc}; {left}; {where}") from exc
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

    def _wait_active(self, droplet: _Droplet, action_id: int | None, region: str, *, timeout: float, poll: float,
                     not_found_grace: float, progress: Callable[[str], None]) -> DropletInfo:
        """Until the droplet is active with a public IPv4. A 404 is waited out for
        ``not_found_grace`` seconds (the API may not show a new droplet yet), unless its
        create action errored: then DigitalOcean could not place it and removed it."""
        deadline = time.monotonic() + timeout
        last_status: str | None = None
        unseen_since: float | None = None
        while True:
            try:
                with self._library_errors():
                    droplet.load()
            except ResourceGone:
                if self._action_status(action_id) == "errored":
                    raise _not_placed(droplet.id, region) from None
                now = time.monotonic()
                if unseen_since is None:
                    unseen_since = now
                    progress(f"droplet {droplet.id} is not visible to the API yet; waiting")
                if now - unseen_since >= not_found_grace:
                    raise ProvisionTimeout(
                        f"droplet {droplet.id} was not visible to the DigitalOcean API after {not_found_grace:g}s; "
                        "try again later"
                    ) from None
                last_status = None
            else:
                unseen_since = None
                status = str(droplet.status)
                if status != last_status:
                    progress(f"droplet {droplet.id} is {status}")
                    last_status = status
                if status == "active" and droplet.ip_address:
                    progress(f"active at {droplet.ip_address}")
                    return droplet_info(droplet)
                if status in ("off", "archive"):
                    raise ProvisionFailed(
                        f"droplet {droplet.id} went {status!r} while being created; try again or pick another region"
                    )
                if status == "new" and self._action_status(action_id) == "errored":
                    raise _not_placed(droplet.id, region)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProvisionTimeout(
                    f"droplet {droplet.id} was still {last_status or 'not visible'!r} after {timeout:g}s; "
                    "try again later or pick another region"
                )
            time.sleep(min(poll, remaining))

    def _find_created(self, name: str, toolbox_tag: str, wait: float, poll: float) -> int | None:
        """After a create whose answer was lost: the droplet it may have made anyway. By name,
        since its tags may not apply yet; one whose tags name another toolbox is not it."""
        deadline = time.monotonic() + wait
        while True:
            try:
                found = [d for d in self.named(name) if d.tagged(TOOLBOX_TAG) in (None, toolbox_tag.removeprefix(TOOLBOX_TAG))]
                if found:
                    return found[0].id
            except DigitalOceanError as exc:
                log.warning("could not look for a half-created droplet %s: %s", name, exc)
            if time.monotonic() >= deadline:
                return None
            time.sleep(poll)

    def destroy_kept(self, leftover: Leftover, keeper: Keeper | None, *, fresh: bool = True,
                     action_id: int | None = None, budget: float = 180.0, poll: float = 1.0,
                     progress: Callable[[str], None] = _ignore) -> str:
        """Delete a droplet a failed create made, handing it to ``keeper`` first and telling it
        how it ended; its SSH key (``leftover.key``) goes once it is gone, or stays with it.
        Returns what is still there ('' when nothing)."""
        if keeper is not None:
            keeper.keep(leftover)
        try:
            progress(f"deleting droplet {leftover.droplet_id}")
            self.destroy(leftover.droplet_id, fresh=fresh, action_id=action_id, budget=budget, poll=poll,
                         progress=progress)
        except DigitalOceanError as exc:
            log.warning("could not delete droplet %s after a failed create: %s", leftover.droplet_id, exc)
            if keeper is not None:
                keeper.settle(leftover, False, str(exc))
            return str(exc) if isinstance(exc, NotDestroyed) else f"droplet {leftover.droplet_id} could not be deleted ({exc})"
        if keeper is not None:
            keeper.settle(leftover, True, "")
        return self._delete_key(leftover.key, leftover.name, progress) if leftover.key else ""

    def _delete_key(self, ref: int | str, name: str, progress: Callable[[str], None]) -> str:
        try:
            progress(f"deleting SSH key {name}")
            with suppress(ResourceGone), self._library_errors():
                self._make(_SSHKey, id=ref).destroy()
        except DigitalOceanError as exc:
            log.warning("could not delete SSH key %s: %s", name, exc)
            return f"SSH key {name} could not be deleted"
        return ""

    def _clean_up(self, leftover: Leftover | None, action_id: int | None, key_id: int | None, name: str,
                  keeper: Keeper | None, budget: float, poll: float, progress: Callable[[str], None]) -> str:
        """Delete what a failed provision made; returns what could not be deleted ('' if all went).
        ``leftover.key`` is set exactly when ``key_id`` is (the key is ours)."""

        def say(line: str) -> None:
            with suppress(Exception):  # a failing progress sink must not stop the clean-up
                progress(line)

        if leftover is not None:
            return self.destroy_kept(leftover, keeper, action_id=action_id, budget=budget, poll=poll, progress=say)
        return self._delete_key(key_id, name, say) if key_id is not None else ""
