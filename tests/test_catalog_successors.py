"""The maintained successors of archived catalog servers, built and run as tbx runs them
(the package fetched on the host, built with --network none, a hardened container): the
Zencoder Slack server lists the archived server's tools with a token it never uses, as
listing asks Slack nothing; without a token it exits saying what it lacks."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import docker
import pytest

from console.catalog import load_catalog
from console.services import servers, toolboxes
from console.workspace import Workspace

pytestmark = pytest.mark.docker
SLACK_TOOLS = ["slack_add_reaction", "slack_get_channel_history", "slack_get_thread_replies", "slack_get_user_profile",
               "slack_get_users", "slack_list_channels", "slack_post_message", "slack_reply_to_thread"]
"""The archived reference server's eight tools (servers-archived src/slack), kept by its successor."""


@pytest.fixture
def local(workspace: Workspace, docker_engine) -> Iterator[Workspace]:  # noqa: ANN001
    toolbox = toolboxes.add_local(workspace, "local")
    yield workspace
    for container in docker.from_env().containers.list(all=True, filters={"label": f"io.tbx.toolbox={toolbox.id}"}):
        container.remove(force=True)


def test_the_zencoder_slack_server_lists_the_archived_servers_tools(local: Workspace) -> None:
    entry = load_catalog(local.paths).get("slack-zencoder")
    servers.add_server(local, "local", entry, env={"SLACK_TEAM_ID": "T00000000"},
                       secrets={"SLACK_BOT_TOKEN": "xoxb-never-sent"}, network="none")
    server = servers.resolve(local, "local/slack-zencoder").server
    assert sorted(t.name for t in local.repos.tools.of_server(server.id)) == SLACK_TOOLS

    # The same image without its settings: it stops at once and says which are missing.
    image = server.image
    assert image is not None
    done = subprocess.run(["docker", "run", "--rm", "-i", "--network", "none", "--read-only", "--user", "10001:10001",
                           image, *entry.command], input=b"", capture_output=True, timeout=60)
    assert done.returncode != 0
    assert b"SLACK_BOT_TOKEN" in done.stderr and b"SLACK_TEAM_ID" in done.stderr
