"""Local toolbox images, for real: PyPI and npm servers built on the test base image,
an image pulled by digest from a loopback registry, the cache, and the failures."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import docker
import pytest
from docker.errors import ImageNotFound

from console.catalog.model import CatalogEntry
from console.config import RuntimeSettings, load_settings
from console.errors import ImageError
from console.runtime.engine import default_endpoint
from console.runtime.imagecache import Manifest, SpecCache
from console.runtime.imagedocker import python_dockerfile
from console.runtime.imagefetch import PythonTarget, redact, summarize
from console.runtime.images import LABEL_INPUTS, LABEL_MANAGED, LABEL_SOURCE, ImageBuilder

TIME_VERSION = "2026.10.19"  # pip index versions mcp-server-time
MEMORY_VERSION = "2026.8.31"  # npm view @modelcontextprotocol/server-memory version
REGISTRY = "127.0.0.1:5000"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "tbx-test", "version": "1"}},
}
IN_CI = os.environ.get("CI") == "true"
DOCKER_CLI = shutil.which("docker") or "docker"
"""Resolved before any test empties PATH to prove a build needs no download tools."""


def entry(entry_id: str, command: list[str], package: tuple[str, str, str] | None = None, image: str | None = None) -> CatalogEntry:
    source: dict[str, object] = {}
    if package is not None:
        source["package"] = {"kind": package[0], "package": package[1], "version": package[2]}
    if image is not None:
        source["image"] = image
    return CatalogEntry.model_validate(
        {"id": entry_id, "title": entry_id, "description": "test", "source": source, "command": command}
    )


TIME = entry("time", ["mcp-server-time"], ("pypi", "mcp-server-time", TIME_VERSION))
MEMORY = entry("memory", ["mcp-server-memory"], ("npm", "@modelcontextprotocol/server-memory", MEMORY_VERSION))


class Recorder:
    """A progress callback that keeps the lines and the time spent."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.started = time.monotonic()
        self.seconds = 0.0

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self.seconds = time.monotonic() - self.started

    def saw(self, prefix: str) -> bool:
        return any(line.startswith(prefix) for line in self.lines)


def fail_or_skip(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI needs {reason} (scripts/testenv.sh sets it up)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def client(docker_engine) -> Iterator[docker.DockerClient]:  # noqa: ANN001
    engine = docker.DockerClient(base_url=default_endpoint(), timeout=120)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def settings(client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> RuntimeSettings:
    runtime = load_settings(tmp_path_factory.mktemp("config") / "config.toml").runtime
    try:
        client.images.get(runtime.base_image_python)
    except ImageNotFound:
        fail_or_skip(f"the base image {runtime.base_image_python}")
    return runtime


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return Path(os.environ["TBX_CACHE_DIR"])


@pytest.fixture(scope="session")
def builder(client: docker.DockerClient, settings: RuntimeSettings, cache_dir: Path) -> ImageBuilder:
    return ImageBuilder(client, settings, cache_dir)


@pytest.fixture(scope="session")
def time_image(builder: ImageBuilder) -> tuple[str, Recorder]:
    progress = Recorder()
    return builder.ensure(TIME, progress), progress


@pytest.fixture(scope="session")
def memory_image(builder: ImageBuilder) -> tuple[str, Recorder]:
    progress = Recorder()
    return builder.ensure(MEMORY, progress), progress


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No way to download: pip has no index and no config, npm is not on PATH."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))


@pytest.fixture
def registry() -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{REGISTRY}/v2/", timeout=3):
            return REGISTRY
    except OSError:
        fail_or_skip(f"an image registry on {REGISTRY}")
        raise AssertionError("unreachable") from None


def mcp_initialize(image: str, command: list[str]) -> dict:
    """Start the server the way the runtime will (no network, read-only root, unprivileged
    user, only /tmp writable) and send it MCP's initialize request on stdin."""
    argv = [
        DOCKER_CLI, "run", "--rm", "-i", "--network", "none", "--read-only", "--user", "10001:10001",
        "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", image, *command,
    ]  # fmt: skip
    done = subprocess.run(argv, input=json.dumps(INITIALIZE) + "\n", capture_output=True, text=True, timeout=90)
    for line in done.stdout.splitlines():
        message = json.loads(line)
        if message.get("id") == 1:
            return message
    raise AssertionError(f"no answer to initialize (exit {done.returncode}): {done.stderr[-500:]}")


def labels(client: docker.DockerClient, ref: str) -> dict[str, str]:
    return client.images.get(ref).labels


def dangling_build_leftovers(client: docker.DockerClient, since: float) -> list[str]:
    """Untagged, childless images made since ``since`` by the steps of a PyPI build."""
    found = []
    for image in client.images.list(filters={"dangling": True}):
        attrs = client.api.inspect_image(image.id)
        created = attrs.get("Created", "")
        cmd = " ".join((attrs.get("ContainerConfig") or {}).get("Cmd") or [])
        if ("/tbx/wheels" in cmd or "/opt/tbx" in cmd) and created >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since - 2)):
            found.append(image.id)
    return found


# -- building and running ------------------------------------------------------------------


def test_pypi_server_is_built_and_answers_initialize(client: docker.DockerClient, time_image: tuple[str, Recorder]) -> None:
    ref, progress = time_image
    assert ref.startswith("tbx/time:") and len(ref.split(":")[1]) == 16
    image_labels = labels(client, ref)
    assert image_labels[LABEL_MANAGED] == "true"
    assert image_labels[LABEL_SOURCE] == f"pypi:mcp-server-time=={TIME_VERSION}"
    assert image_labels[LABEL_INPUTS].startswith(ref.split(":")[1])
    answer = mcp_initialize(ref, ["mcp-server-time"])
    assert answer["result"]["serverInfo"]["version"] == TIME_VERSION
    # The wheels were only in the build stage: the final image has no /tbx directory.
    listing = client.containers.run(ref, ["ls", "/"], network_mode="none", remove=True).decode()
    assert "tbx" not in listing.split() and "opt" in listing.split()


def test_npm_server_is_built_and_answers_initialize(client: docker.DockerClient, memory_image: tuple[str, Recorder]) -> None:
    ref, _ = memory_image
    assert ref.startswith("tbx/memory:")
    assert labels(client, ref)[LABEL_SOURCE] == f"npm:@modelcontextprotocol/server-memory@{MEMORY_VERSION}"
    answer = mcp_initialize(ref, ["mcp-server-memory"])
    assert answer["result"]["serverInfo"]["name"] == "memory-server"
    lock = client.containers.run(ref, ["cat", "/opt/tbx/app/package-lock.json"], network_mode="none", remove=True)
    assert f'"version": "{MEMORY_VERSION}"' in lock.decode()


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize("which", ["time_image", "memory_image"])
def test_warm_ensure_downloads_and_builds_nothing(
    request: pytest.FixtureRequest, builder: ImageBuilder, client: docker.DockerClient, which: str
) -> None:
    ref, _ = request.getfixturevalue(which)
    image_id = client.images.get(ref).id
    progress = Recorder()
    assert builder.ensure(TIME if which == "time_image" else MEMORY, progress) == ref
    assert progress.lines == [f"{ref} is up to date"]
    assert progress.seconds < 2.0
    assert client.images.get(ref).id == image_id


@pytest.mark.usefixtures("offline")
def test_concurrent_builders_of_one_spec_build_once_from_the_cache(
    time_image: tuple[str, Recorder], client: docker.DockerClient, settings: RuntimeSettings, cache_dir: Path
) -> None:
    race = entry("time-race", ["mcp-server-time"], ("pypi", "mcp-server-time", TIME_VERSION))
    for image in client.images.list(name="tbx/time-race"):
        client.images.remove(image.id, force=True)
    results: dict[int, str] = {}
    records = [Recorder(), Recorder()]

    def run(index: int) -> None:
        own = docker.DockerClient(base_url=default_endpoint(), timeout=120)
        try:
            results[index] = ImageBuilder(own, settings, cache_dir).ensure(race, records[index])
        finally:
            own.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        assert len(results) == 2 and results[0] == results[1]
        built = [r for r in records if r.saw("built ")]
        assert len(built) == 1, [r.lines for r in records]
        other = records[1 - records.index(built[0])]
        assert other.lines[-1] == f"{results[0]} is up to date" and not other.saw("building")
        # Built from the cached wheels: nothing was downloaded (and could not have been).
        assert not any(r.saw("downloading") for r in records)
        assert mcp_initialize(results[0], ["mcp-server-time"])["result"]["serverInfo"]["name"] == "mcp-time"
    finally:
        for image in client.images.list(name="tbx/time-race"):
            client.images.remove(image.id, force=True)


# -- pulling ---------------------------------------------------------------------------------


def test_image_pinned_by_digest_is_pulled_from_a_loopback_registry(
    builder: ImageBuilder, client: docker.DockerClient, time_image: tuple[str, Recorder], registry: str
) -> None:
    built, _ = time_image
    marker = uuid.uuid4().hex[:12]
    repo = f"{registry}/tbx-test/time"
    # An image of its own (one more label) so the engine has to fetch it from the registry.
    dockerfile = BytesIO(f"FROM {built}\nLABEL io.tbx.test={marker}\n".encode())
    client.images.build(fileobj=dockerfile, tag=f"{repo}:{marker}", network_mode="none", rm=True)
    digest = None
    for event in client.api.push(repo, tag=marker, stream=True, decode=True):
        assert "error" not in event, event
        digest = (event.get("aux") or {}).get("Digest", digest)
    assert digest and digest.startswith("sha256:")
    client.images.remove(f"{repo}:{marker}")
    pinned = f"{repo}@{digest}"
    with pytest.raises(ImageNotFound):
        client.images.get(pinned)
    pulled_entry = entry("time-pulled", ["mcp-server-time"], image=pinned)
    try:
        progress = Recorder()
        ref = builder.ensure(pulled_entry, progress)
        assert progress.saw(f"pulling {pinned}") and progress.saw("pull: Digest: " + digest)
        assert ref.startswith("tbx/time-pulled:")
        image_labels = labels(client, ref)
        assert image_labels[LABEL_SOURCE] == pinned and image_labels["io.tbx.test"] == marker
        assert mcp_initialize(ref, ["mcp-server-time"])["result"]["serverInfo"]["name"] == "mcp-time"
        again = Recorder()
        assert builder.ensure(pulled_entry, again) == ref
        assert again.lines == [f"{ref} is up to date"]
    finally:
        for leftover in (*[i.id for i in client.images.list(name="tbx/time-pulled")], pinned):
            with contextlib.suppress(ImageNotFound):
                client.images.remove(leftover, force=True)


def test_pull_of_an_unknown_digest_fails_clearly(builder: ImageBuilder, client: docker.DockerClient, registry: str) -> None:
    pinned = f"{registry}/tbx-test/time@sha256:{'0' * 64}"
    with pytest.raises(ImageError) as failure:
        builder.ensure(entry("time-nowhere", ["mcp-server-time"], image=pinned))
    message = str(failure.value)
    assert message.startswith(f"cannot pull {pinned}: ") and "\n" not in message
    assert "manifest unknown" in message.lower()
    assert client.images.list(name="tbx/time-nowhere") == []


# -- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("package", "says"),
    [
        (("pypi", "mcp-server-time", "0.0.0"), "No matching distribution found for mcp-server-time==0.0.0"),
        (("npm", "@modelcontextprotocol/server-memory", "0.0.0"), "No matching version found"),
    ],
)
def test_unknown_version_fails_clearly_and_leaves_nothing(
    client: docker.DockerClient, settings: RuntimeSettings, tmp_path: Path, package: tuple[str, str, str], says: str
) -> None:
    bad = entry("bad-version", ["whatever"], package)
    with pytest.raises(ImageError) as failure:
        ImageBuilder(client, settings, tmp_path).ensure(bad)
    message = str(failure.value)
    assert message.startswith(f"cannot download {package[1]}") and says in message and "\n" not in message
    assert "versions" in message.split(";")[-1]  # says how to list the real versions
    specs = tmp_path / "images" / "specs"
    assert not specs.exists() or list(specs.iterdir()) == []
    assert client.images.list(name="tbx/bad-version") == []


@pytest.mark.usefixtures("offline")
def test_failed_build_step_names_the_step_and_leaves_no_image(
    builder: ImageBuilder, client: docker.DockerClient, time_image: tuple[str, Recorder]
) -> None:
    wrong = entry("time-badcmd", ["no-such-server-x"], ("pypi", "mcp-server-time", TIME_VERSION))
    started = time.time()
    with pytest.raises(ImageError) as failure:
        builder.ensure(wrong)
    message = str(failure.value)
    assert "at step" in message and "no-such-server-x is not on PATH in this image" in message
    assert "\n" not in message
    assert client.images.list(name="tbx/time-badcmd") == []
    assert dangling_build_leftovers(client, started) == []


def test_missing_base_image_that_cannot_be_pulled(client: docker.DockerClient, settings: RuntimeSettings, tmp_path: Path) -> None:
    missing = f"{REGISTRY}/tbx-test/no-such-base:{uuid.uuid4().hex[:8]}"
    broken = settings.model_copy(update={"base_image_python": missing})
    with pytest.raises(ImageError) as failure:
        ImageBuilder(client, broken, tmp_path).ensure(TIME)
    message = str(failure.value)
    assert message.startswith(f"cannot pull {missing}: ") and "runtime.base_image_python" in message


def test_base_image_without_python_fails_clearly_and_leaves_no_container(
    client: docker.DockerClient, settings: RuntimeSettings, tmp_path: Path
) -> None:
    no_python = f"tbx-test/no-python:{uuid.uuid4().hex[:8]}"
    dockerfile = BytesIO(f"FROM {settings.base_image_python}\nRUN rm -f /usr/bin/python3*\n".encode())
    client.images.build(fileobj=dockerfile, tag=no_python, network_mode="none", rm=True)
    try:
        broken = settings.model_copy(update={"base_image_python": no_python})
        with pytest.raises(ImageError) as failure:
            ImageBuilder(client, broken, tmp_path).ensure(TIME)
        assert str(failure.value) == (
            f"base image {no_python} cannot run python3: python3 is not on its PATH; "
            "set runtime.base_image_python to an image with python3 and its venv module"
        )
        assert client.containers.list(all=True, filters={"ancestor": no_python}) == []
    finally:
        client.images.remove(no_python, force=True)


# -- pure parts --------------------------------------------------------------------------------


def test_source_selection_follows_image_source(client: docker.DockerClient, tmp_path: Path) -> None:
    both = entry("both", ["mcp-server-time"], ("pypi", "mcp-server-time", "1.0"), image=f"r/x@sha256:{'a' * 64}")
    only_package = entry("pkg", ["mcp-server-time"], ("npm", "@scope/server", "1.0"))
    only_image = entry("img", ["x"], image=f"r/x@sha256:{'b' * 64}")

    def recipe(mode: str, which: CatalogEntry):  # noqa: ANN202
        return ImageBuilder(client, RuntimeSettings(image_source=mode, base_image_node="n:1"), tmp_path).recipe(which)

    assert recipe("auto", both).package is None and recipe("auto", both).base == both.source.image
    assert recipe("build", both).source == "pypi:mcp-server-time==1.0"
    assert recipe("auto", only_package).base == "n:1" and recipe("auto", only_package).source == "npm:@scope/server@1.0"
    with pytest.raises(ImageError, match="has no image to pull"):
        recipe("pull", only_package)
    with pytest.raises(ImageError, match="has no package to build from"):
        recipe("build", only_image)
    evil = entry("evil", ["x"], ("pypi", "x; rm -rf /", "1.0"))
    with pytest.raises(ImageError, match="bad pypi package name"):
        recipe("auto", evil)
    with pytest.raises(ImageError, match="contains control characters"):
        python_dockerfile("sha256:" + "c" * 64, "x", "1.0", "server\nRUN evil")
    assert "RUN command -v 'my server' >/dev/null" in python_dockerfile("sha256:" + "c" * 64, "x", "1.0", "my server")


def test_python_target_accepts_every_older_manylinux() -> None:
    target = PythonTarget.from_probe(
        {"version": "3.11", "implementation": "cpython", "machine": "x86_64", "libc": "glibc", "libc_version": "2.36"},
        "base",
    )
    platforms = target.platforms()
    assert platforms[0] == "manylinux_2_36_x86_64" and "manylinux_2_17_x86_64" in platforms
    assert {"manylinux2014_x86_64", "manylinux1_x86_64"} <= set(platforms)
    assert "manylinux_2_37_x86_64" not in platforms
    with pytest.raises(ImageError, match="need CPython or PyPy on glibc"):
        PythonTarget.from_probe({"version": "3.12", "implementation": "cpython", "machine": "x86_64", "libc": "", "libc_version": ""}, "alpine")


def test_tool_output_is_summarised_to_its_cause_without_credentials() -> None:
    npm = "npm warn Unknown user config\nnpm error code ETARGET\nnpm error notarget No matching version found for a@9.\nnpm error notarget In most cases\nnpm error A complete log of this run can be found in: /x.log\n"
    assert summarize(npm) == "notarget No matching version found for a@9."
    pip = "WARNING: Location 'x' is ignored\nERROR: Could not find a version\nERROR: No matching distribution found for b==9\n"
    assert summarize(pip) == "No matching distribution found for b==9"
    assert redact("GET https://user:s3cret@index.example/simple/") == "GET https://***@index.example/simple/"


def test_cache_entries_appear_whole_and_are_verified(tmp_path: Path) -> None:
    cache = SpecCache(tmp_path, "pypi:x==1")
    with pytest.raises(RuntimeError), cache.staging() as staged:
        (staged / "half.whl").write_bytes(b"partial")
        raise RuntimeError("download died")
    assert not cache.dir.exists() and list(cache.dir.parent.iterdir()) == []
    with cache.staging() as staged:
        (staged / "a.whl").write_bytes(b"wheel")
        cache.commit(staged, Manifest.of("pypi:x==1", staged, ["a.whl"]))
    manifest = cache.verified()
    assert manifest is not None and manifest == cache.manifest()
    (cache.dir / "a.whl").write_bytes(b"tampered")
    assert cache.verified() is None and cache.manifest() == manifest
