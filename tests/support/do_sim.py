"""A DigitalOcean API simulator: a real HTTP server on 127.0.0.1 speaking the subset of
https://docs.digitalocean.com/reference/api/ that ``console.remote.droplets`` uses, with the
API's response shapes, pagination, bearer auth, rate-limit headers and error bodies.

    with DigitalOceanSim(token="dop_v1_test") as sim:
        api = DropletApi("dop_v1_test", endpoint=sim.endpoint)

A droplet is "new" (and ``locked``) for ``active_after`` seconds, then the ``provision``
hook gives it its public IPv4 and it turns "active" (lazily, on the next request that
looks at it). Faults are attributes: ``droplet_limit``, ``rate_limit_next``,
``limit_for()``, ``stick_in_new``, ``fail_provision``, and the real API's failure modes
(DigitalOcean's OpenAPI description, its issue trackers, Terraform's provider):

- ``hidden_for``: a new droplet answers 404 (to GET and DELETE) and is missing from
  lists for a while: the API is eventually consistent right after a create;
- ``tag_lag``: a new droplet is missing from ``?tag_name=`` lists for a while (found by
  ``?name=`` and by id);
- ``delete_while_busy``: a droplet whose create action still runs refuses DELETE with
  422 "Droplet already has a pending event." (``refuse``, the default), or answers 204
  and stays (``ignore``);
- ``locked``: ids of droplets another action (a power cycle, a backup) holds: they refuse
  DELETE the same way;
- ``fail_placement``: the create action errors and DigitalOcean removes the droplet itself;
- ``lose_create_answer``: the droplet is made but the answer is a 500;
- ``retired``: image slugs that no longer resolve;
- ``clock_skew``: the API's clock (its ``Date`` and ``ratelimit-reset`` headers) is
  ahead of ours by that many seconds (behind when negative).

``droplets[id]`` is the droplet as the API returns it plus two keys the API never returns,
``user_data`` and ``ssh_keys`` (as posted), so tests can assert on them; ``create_bodies``
is every ``POST /v2/droplets`` body as it arrived.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import itertools
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.support.do_sim_data import APPLICATIONS, IMAGES, REGIONS, RETIRED, SIZES

__all__ = ["IMAGES", "REGIONS", "RETIRED", "SIZES", "DigitalOceanSim", "md5_fingerprint"]

Json = dict[str, Any]
Reply = tuple[int, Json | None, dict[str, str]]

_PRIVATE = ("user_data", "ssh_keys")  # recorded on droplets, never returned


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def md5_fingerprint(public_key: str) -> str | None:
    parts = public_key.split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def _error(status: int, api_id: str, message: str) -> Reply:
    request_id = str(uuid.uuid4())
    return status, {"id": api_id, "message": message, "request_id": request_id}, {"x-request-id": request_id}


def _not_found() -> Reply:
    return _error(404, "not_found", "The resource you were accessing could not be found.")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sim: DigitalOceanSim


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections go away on their own
    server: _Server

    def do_GET(self) -> None:
        self.server.sim._serve(self, "GET")

    def do_POST(self) -> None:
        self.server.sim._serve(self, "POST")

    def do_PUT(self) -> None:
        self.server.sim._serve(self, "PUT")

    def do_DELETE(self) -> None:
        self.server.sim._serve(self, "DELETE")

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The ``Date`` header, by the API's clock.
        return super().date_time_string(self.server.sim.clock() if timestamp is None else timestamp)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass


class DigitalOceanSim:
    """The simulated API; attributes are the knobs and the record."""

    def __init__(
        self,
        token: str = "dop_v1_test",
        provision: Callable[[Json], str] | None = None,
        deprovision: Callable[[Json], None] | None = None,
        *,
        email: str = "sammy@example.com",
    ) -> None:
        self.token = token
        self.provision = provision
        self.deprovision = deprovision
        self.email = email
        self.droplets: dict[int, Json] = {}
        self.keys: dict[int, Json] = {}
        self.actions: dict[int, Json] = {}
        self.deleted: list[Json] = []
        """Droplets as they were when DELETE removed them."""
        self.removed: list[Json] = []
        """Droplets DigitalOcean removed itself after a failed placement."""
        self.create_bodies: list[Json] = []
        self.refused_deletes = 0
        self.ignored_deletes = 0
        self.requests: list[tuple[str, str]] = []
        self.queries: list[tuple[str, str, dict[str, list[str]]]] = []
        self.hook_errors: list[BaseException] = []
        self.active_after = 0.5
        self.droplet_limit: int | None = None
        self.rate_limit_next = 0
        self.retry_after: int | None = 1
        """The Retry-After (whole seconds) of a counted 429 (``rate_limit_next``); None sends
        none, as the hourly limit's 429 does."""
        self.clock_skew = 0.0
        self.hidden_for = 0.0
        self.tag_lag = 0.0
        self.delete_while_busy = "refuse"
        self.locked: set[int] = set()
        self.stick_in_new = False
        self.fail_provision = False
        self.fail_placement = False
        self.lose_create_answer = False
        self.max_per_page = 200
        self.sizes = copy.deepcopy(SIZES)
        self.regions = copy.deepcopy(REGIONS)
        self.images = copy.deepcopy(IMAGES)
        self.retired = set(RETIRED)
        self._lock = threading.RLock()
        self._ids = itertools.count(400000001)
        self._born: dict[int, float] = {}
        self._phase: dict[int, str] = {}  # new | provisioning | active | errored | deleted | removed
        self._create_action: dict[int, int] = {}
        self._limited_until = 0.0
        self._remaining = 5000
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def __enter__(self) -> DigitalOceanSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> DigitalOceanSim:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.sim = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="do-sim", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "start the simulator first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v2/"

    # -- helpers for tests and hooks

    def clock(self) -> float:
        """The API's time (epoch seconds)."""
        return time.time() + self.clock_skew

    def limit_for(self, seconds: float) -> None:
        """The hourly quota is used up for ``seconds``: every request gets a 429 carrying only
        the ``ratelimit-*`` headers (no Retry-After), ``ratelimit-reset`` the API's epoch
        second when the oldest request expires."""
        with self._lock:
            self._limited_until = time.monotonic() + seconds

    def public_keys_of(self, droplet: Json) -> list[str]:
        """The public key lines of the SSH keys a droplet was created with."""
        with self._lock:
            return [k["public_key"] for ref in droplet.get("ssh_keys", []) if (k := self._find_key(str(ref)))]

    def count(self, method: str, prefix: str) -> int:
        """How many requests with ``method`` went to a path starting with ``prefix`` (e.g. '/v2/droplets')."""
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and p.startswith(prefix))

    def create_raw(self, **body: Any) -> int:
        """Make a droplet as another program would (no key, no hook wait): its id."""
        status, reply, _ = self._create_droplet(payload={"region": "fra1", "size": "s-1vcpu-1gb",
                                                         "image": "debian-12-x64", **body})
        assert status == 202 and reply is not None, reply
        return int(reply["droplet"]["id"])

    # -- HTTP

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        query = parse_qs(parts.query)
        with self._lock:
            self.requests.append((method, parts.path))
            self.queries.append((method, parts.path, query))
        status, body, headers = self._answer(method, parts.path, query, raw, handler.headers.get("Authorization"))
        data = b"" if body is None else json.dumps(body).encode()
        handler.send_response(status)
        if body is not None:
            handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if data:
            handler.wfile.write(data)

    def _rate_limited(self) -> Reply | None:
        now = time.monotonic()
        if now < self._limited_until:
            status, body, headers = _error(429, "too_many_requests", "API rate limit exceeded.")
            reset = math.ceil(self.clock() + self._limited_until - now)
            return status, body, {**headers, "ratelimit-limit": "5000", "ratelimit-remaining": "0",
                                  "ratelimit-reset": str(reset)}
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            status, body, headers = _error(429, "too_many_requests", "API rate limit exceeded.")
            wait = self.retry_after or 0
            headers.update({"ratelimit-limit": "5000", "ratelimit-remaining": "0",
                            "ratelimit-reset": str(int(self.clock()) + wait)})
            if self.retry_after is not None:
                headers["Retry-After"] = str(self.retry_after)
            return status, body, headers
        return None

    def _answer(self, method: str, path: str, query: dict[str, list[str]], raw: bytes, auth: str | None) -> Reply:
        if auth != f"Bearer {self.token}":
            return _error(401, "Unauthorized", "Unable to authenticate you")
        with self._lock:
            limited = self._rate_limited()
            if limited is not None:
                return limited
            self._remaining = max(0, self._remaining - 1)
            limits = {
                "ratelimit-limit": "5000",
                "ratelimit-remaining": str(self._remaining),
                "ratelimit-reset": str(int(self.clock()) + 60),
            }
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            return _error(400, "bad_request", "unable to parse the request body as JSON")
        status, body, headers = self._route(method, path.rstrip("/"), query, payload)
        return status, body, {**limits, **headers}

    def _route(self, method: str, path: str, query: dict[str, list[str]], payload: Any) -> Reply:
        routes: list[tuple[str, str, Callable[..., Reply]]] = [
            ("GET", r"/v2/account", self._get_account),
            ("GET", r"/v2/account/keys", self._list_keys),
            ("POST", r"/v2/account/keys", self._create_key),
            ("GET", r"/v2/account/keys/(?P<ref>[^/]+)", self._get_key),
            ("DELETE", r"/v2/account/keys/(?P<ref>[^/]+)", self._delete_key),
            ("GET", r"/v2/droplets", self._list_droplets),
            ("POST", r"/v2/droplets", self._create_droplet),
            ("GET", r"/v2/droplets/(?P<droplet_id>\d+)", self._get_droplet),
            ("DELETE", r"/v2/droplets/(?P<droplet_id>\d+)", self._delete_droplet),
            ("GET", r"/v2/actions/(?P<action_id>\d+)", self._get_action),
            ("GET", r"/v2/images", self._list_images),
            ("GET", r"/v2/images/(?P<ref>[^/]+)", self._get_image),
            ("GET", r"/v2/sizes", self._list_sizes),
            ("GET", r"/v2/regions", self._list_regions),
        ]
        known_path = False
        for verb, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match is None:
                continue
            known_path = True
            if verb == method:
                return handler(query=query, payload=payload, **match.groupdict())
        if known_path:
            return _error(405, "method_not_allowed", f"{method} is not allowed on {path}")
        return _not_found()

    def _page(self, path: str, key: str, items: list[Json], query: dict[str, list[str]]) -> Reply:
        """DigitalOcean's list envelope: ``{key: [...], "links": {"pages": {...}}, "meta": {"total": n}}``."""
        try:
            page = max(1, int(query.get("page", ["1"])[0]))
            per_page = max(1, min(200, int(query.get("per_page", ["20"])[0]), self.max_per_page))
        except ValueError:
            return _error(400, "bad_request", "page and per_page must be integers")
        last = max(1, -(-len(items) // per_page))
        extra = {k: v[0] for k, v in query.items() if k not in ("page", "per_page")}

        def url(n: int) -> str:
            return f"{self.endpoint.rstrip('/')}{path[3:]}?{urlencode({**extra, 'page': n, 'per_page': per_page})}"

        pages: dict[str, str] = {}
        if page > 1:
            pages.update(first=url(1), prev=url(page - 1))
        if page < last:
            pages.update(next=url(page + 1), last=url(last))
        chunk = items[(page - 1) * per_page : page * per_page]
        return 200, {key: chunk, "links": {"pages": pages} if pages else {}, "meta": {"total": len(items)}}, {}

    # -- account and keys

    def _get_account(self, **_: Any) -> Reply:
        with self._lock:
            limit = self.droplet_limit if self.droplet_limit is not None else 25
        return 200, {
            "account": {
                "droplet_limit": limit,
                "floating_ip_limit": 3,
                "volume_limit": 100,
                "email": self.email,
                "uuid": "b6fr89dbf6d9156cace5f3c78dc9851d957381ef",
                "email_verified": True,
                "status": "active",
                "status_message": "",
                "team": {"uuid": "5df3e3004a17e242b7c20ca6c9fc25b701a47ece", "name": "My Team"},
            }
        }, {}

    def _find_key(self, ref: str) -> Json | None:
        if ref.isdigit():
            return self.keys.get(int(ref))
        return next((k for k in self.keys.values() if k["fingerprint"] == ref), None)

    def _list_keys(self, query: dict[str, list[str]], **_: Any) -> Reply:
        with self._lock:
            items = [dict(k) for k in self.keys.values()]
        return self._page("/v2/account/keys", "ssh_keys", items, query)

    def _create_key(self, payload: Any, **_: Any) -> Reply:
        name = payload.get("name") if isinstance(payload, dict) else None
        public_key = str(payload.get("public_key") or "").strip() if isinstance(payload, dict) else ""
        if not name:
            return _error(422, "unprocessable_entity", "Name is required")
        fingerprint = md5_fingerprint(public_key)
        if fingerprint is None:
            return _error(422, "unprocessable_entity", "Key invalid, key should be of the form `type key [comment]`")
        with self._lock:
            if any(k["fingerprint"] == fingerprint for k in self.keys.values()):
                return _error(422, "unprocessable_entity", "SSH Key is already in use on your account")
            key = {"id": next(self._ids), "fingerprint": fingerprint, "public_key": public_key, "name": name}
            self.keys[key["id"]] = key
            return 201, {"ssh_key": dict(key)}, {}

    def _get_key(self, ref: str, **_: Any) -> Reply:
        with self._lock:
            key = self._find_key(ref)
            return (200, {"ssh_key": dict(key)}, {}) if key else _not_found()

    def _delete_key(self, ref: str, **_: Any) -> Reply:
        with self._lock:
            key = self._find_key(ref)
            if key is None:
                return _not_found()
            del self.keys[key["id"]]
            return 204, None, {}

    # -- images

    def _usable_image(self, ref: str) -> Json | None:
        image = next((i for i in self.images.values() if ref in (i["slug"], str(i["id"]))), None)
        return None if image is None or image["slug"] in self.retired else image

    def _list_images(self, query: dict[str, list[str]], **_: Any) -> Reply:
        kind = query.get("type", [None])[0]
        items = [copy.deepcopy(i) for i in self.images.values() if i["slug"] not in self.retired
                 and (kind is None or (kind == "application") == (i["slug"] in APPLICATIONS))]
        return self._page("/v2/images", "images", items, query)

    def _get_image(self, ref: str, **_: Any) -> Reply:
        image = self._usable_image(ref)
        return (200, {"image": copy.deepcopy(image)}, {}) if image else _not_found()

    # -- droplets

    def _create_droplet(self, payload: Any, **_: Any) -> Reply:
        if not isinstance(payload, dict) or not payload.get("name"):
            return _error(422, "unprocessable_entity", "Name can't be blank")
        with self._lock:
            self.create_bodies.append(copy.deepcopy(payload))
        region = next((r for r in self.regions if r["slug"] == payload.get("region")), None)
        size = next((s for s in self.sizes if s["slug"] == payload.get("size")), None)
        image = self._usable_image(str(payload.get("image")))
        if region is None or not region["available"]:
            return _error(422, "unprocessable_entity", "Region is not available")
        if size is None or not size["available"]:
            return _error(422, "unprocessable_entity", "You specified an invalid size for Droplet creation.")
        if region["slug"] not in size["regions"]:
            return _error(422, "unprocessable_entity", "Size is not available in this region.")
        if image is None or region["slug"] not in image["regions"]:
            return _error(422, "unprocessable_entity", "You specified an invalid image for Droplet creation.")
        if "vpc_uuid" in payload and not isinstance(payload["vpc_uuid"], str):
            # The spec types it as a string; leave it out for the region's default VPC.
            return _error(422, "unprocessable_entity", "vpc_uuid must be a string")
        tags = payload.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) and re.fullmatch(r"[\w:-]{1,255}", t) for t in tags):
            return _error(422, "unprocessable_entity", "Tag names may only contain letters, numbers, colons, dashes and underscores")
        with self._lock:
            ssh_keys = payload.get("ssh_keys") or []
            if not all(self._find_key(str(ref)) for ref in ssh_keys):
                return _error(422, "unprocessable_entity", "You specified an invalid ssh key for Droplet creation.")
            if self.droplet_limit is not None and len(self.droplets) >= self.droplet_limit:
                return _error(422, "unprocessable_entity", "creating this/these droplet(s) will exceed your droplet limit")
            droplet_id, action_id = next(self._ids), next(self._ids)
            droplet: Json = {
                "id": droplet_id,
                "name": payload["name"],
                "memory": size["memory"],
                "vcpus": size["vcpus"],
                "disk": size["disk"],
                "locked": True,
                "status": "new",
                "kernel": None,
                "created_at": _now_iso(),
                "features": ["droplet_agent"],
                "backup_ids": [],
                "next_backup_window": None,
                "snapshot_ids": [],
                "image": copy.deepcopy(image),
                "volume_ids": [],
                "size": copy.deepcopy(size),
                "size_slug": size["slug"],
                "networks": {"v4": [], "v6": []},
                "region": copy.deepcopy(region),
                "tags": list(tags),
                "vpc_uuid": payload.get("vpc_uuid") or str(uuid.uuid4()),
                "user_data": payload.get("user_data"),
                "ssh_keys": list(ssh_keys),
            }
            self.droplets[droplet_id] = droplet
            self._born[droplet_id] = time.monotonic()
            self._phase[droplet_id] = "new"
            self._create_action[droplet_id] = action_id
            self.actions[action_id] = {
                "id": action_id,
                "status": "in-progress",
                "type": "create",
                "started_at": _now_iso(),
                "completed_at": None,
                "resource_id": droplet_id,
                "resource_type": "droplet",
                "region": copy.deepcopy(region),
                "region_slug": region["slug"],
            }
            if self.lose_create_answer:
                return _error(500, "server_error", "Unexpected server-side error")
            href = f"{self.endpoint}actions/{action_id}"
            return 202, {
                "droplet": self._public(droplet),
                "links": {"actions": [{"id": action_id, "rel": "create", "href": href}]},
            }, {}

    @staticmethod
    def _public(droplet: Json) -> Json:
        return {k: copy.deepcopy(v) for k, v in droplet.items() if k not in _PRIVATE}

    def _age(self, droplet_id: int) -> float:
        return time.monotonic() - self._born.get(droplet_id, 0.0)

    def _hidden(self, droplet_id: int) -> bool:
        return self._age(droplet_id) < self.hidden_for

    def _list_droplets(self, query: dict[str, list[str]], **_: Any) -> Reply:
        tag = query.get("tag_name", [None])[0]
        name = query.get("name", [None])[0]
        if tag is not None and name is not None:
            return _error(400, "bad_request", "tag_name can not be combined with name")
        with self._lock:
            ids = list(self.droplets)
        for droplet_id in ids:
            self._advance(droplet_id)
        with self._lock:
            items = [self._public(d) for d in self.droplets.values() if not self._hidden(d["id"])
                     and (tag is None or (tag in d["tags"] and self._age(d["id"]) >= self.tag_lag))
                     and (name is None or d["name"].lower() == name.lower())]
        return self._page("/v2/droplets", "droplets", items, query)

    def _get_droplet(self, droplet_id: str, **_: Any) -> Reply:
        self._advance(int(droplet_id))
        with self._lock:
            droplet = self.droplets.get(int(droplet_id))
            if droplet is None or self._hidden(droplet["id"]):
                return _not_found()
            return 200, {"droplet": self._public(droplet)}, {}

    def _busy(self, droplet_id: int) -> bool:
        """Its create action (or another) is still running: the droplet is locked."""
        return self._phase.get(droplet_id) in ("new", "provisioning") or droplet_id in self.locked

    def _delete_droplet(self, droplet_id: str, **_: Any) -> Reply:
        self._advance(int(droplet_id))
        with self._lock:
            droplet = self.droplets.get(int(droplet_id))
            if droplet is None or self._hidden(droplet["id"]):
                return _not_found()
            if self._busy(droplet["id"]) and self.delete_while_busy == "refuse":
                self.refused_deletes += 1
                return _error(422, "unprocessable_entity", "Droplet already has a pending event.")
            if self._busy(droplet["id"]) and self.delete_while_busy == "ignore":
                self.ignored_deletes += 1
                return 204, None, {}
            del self.droplets[droplet["id"]]
            self.deleted.append(droplet)
            # A droplet still in the provision hook is deprovisioned when the hook returns.
            in_hook = self._phase.get(droplet["id"]) == "provisioning"
            self._phase[droplet["id"]] = "deleted"
        if not in_hook:
            self._run_deprovision(droplet)
        return 204, None, {}

    def _get_action(self, action_id: str, **_: Any) -> Reply:
        with self._lock:
            action = self.actions.get(int(action_id))
            resource = action["resource_id"] if action else None
        if resource is not None:
            self._advance(resource)
        with self._lock:
            return (200, {"action": dict(self.actions[int(action_id)])}, {}) if action else _not_found()

    def _list_sizes(self, query: dict[str, list[str]], **_: Any) -> Reply:
        return self._page("/v2/sizes", "sizes", copy.deepcopy(self.sizes), query)

    def _list_regions(self, query: dict[str, list[str]], **_: Any) -> Reply:
        return self._page("/v2/regions", "regions", copy.deepcopy(self.regions), query)

    # -- the droplet's life

    def _finish_action(self, droplet_id: int, status: str) -> None:
        action = self.actions.get(self._create_action.get(droplet_id, -1))
        if action is not None:
            action.update(status=status, completed_at=_now_iso())

    def _advance(self, droplet_id: int) -> None:
        """Move a "new" droplet on once ``active_after`` has passed: active via the hook, or errored."""
        with self._lock:
            droplet = self.droplets.get(droplet_id)
            if droplet is None or self._phase.get(droplet_id) != "new" or self.stick_in_new:
                return
            if self._age(droplet_id) < self.active_after:
                return
            if self.fail_placement:
                # No room for it: the create action errors and DigitalOcean removes the droplet.
                self._phase[droplet_id] = "removed"
                self._finish_action(droplet_id, "errored")
                self.removed.append(self.droplets.pop(droplet_id))
                return
            if self.fail_provision:
                # Creation failed halfway: the droplet exists, stays "new", its create action errored.
                self._phase[droplet_id] = "errored"
                droplet["locked"] = False
                self._finish_action(droplet_id, "errored")
                return
            self._phase[droplet_id] = "provisioning"
            snapshot = copy.deepcopy(droplet)
        try:
            ip = self.provision(snapshot) if self.provision else "127.0.0.1"
        except Exception as exc:  # the hook's failure is the droplet's failure
            with self._lock:
                self.hook_errors.append(exc)
                if self._phase.get(droplet_id) == "provisioning":
                    self._phase[droplet_id] = "errored"
                    droplet["locked"] = False
                self._finish_action(droplet_id, "errored")
            return
        with self._lock:
            deleted = self._phase.get(droplet_id) == "deleted"
            if not deleted:
                self._phase[droplet_id] = "active"
                droplet["status"] = "active"
                droplet["locked"] = False
                droplet["networks"]["v4"] = [
                    {"ip_address": ip, "netmask": "255.255.255.0", "gateway": ip.rsplit(".", 1)[0] + ".1", "type": "public"}
                ]
            self._finish_action(droplet_id, "completed")
        if deleted:
            self._run_deprovision(snapshot)

    def _run_deprovision(self, droplet: Json) -> None:
        if self.deprovision is None:
            return
        try:
            self.deprovision(copy.deepcopy(droplet))
        except Exception as exc:
            with self._lock:
                self.hook_errors.append(exc)


@contextmanager
def found_by_tbx(monkeypatch: Any, token: str) -> Iterator[DigitalOceanSim]:
    """A started simulator that tbx finds through ``DIGITALOCEAN_END_POINT`` (``monkeypatch``
    is pytest's), droplets active in 0.05 s."""
    with DigitalOceanSim(token=token) as sim:
        sim.active_after = 0.05
        monkeypatch.setenv("DIGITALOCEAN_END_POINT", sim.endpoint)
        yield sim
