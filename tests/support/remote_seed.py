"""Remote toolboxes with fixed values, on top of ``seed()``: a droplet and an adopted
SSH host, as a vault records them once added (nothing behind them answers)."""

from __future__ import annotations

from console.model import DesiredState, Orphan, OrphanCause, ServerInstance, Toolbox, ToolboxKind
from console.workspace import Workspace
from tests.support.tui import WHEN

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICZQtYghLEfnDHFxxNmqHBq1tvqlHukxDfI7bVsKI1D0"
HOST_FINGERPRINT = "SHA256:1psKUQTbv+rDECqyNbBLQAfq8ukPl9YKw0A7vhqNdPI"
GATEWAY_CERT = """-----BEGIN CERTIFICATE-----
MIIBbjCCAROgAwIBAgIUAcw0eY9HmyMjBWnLhIBoJUn33wkwCgYIKoZIzj0EAwIw
IjEgMB4GA1UEAwwXdGJ4IGdhdGV3YXkgMjAzLjAuMTEzLjcwHhcNMjYxMTI0MTIx
MDU1WhcNMjkwMjI2MTIxNTU1WjAiMSAwHgYDVQQDDBd0YnggZ2F0ZXdheSAyMDMu
MC4xMTMuNzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGUCEYw9bRTcpJYezyia
C/e9cL3nkfkok8nlCrGd1exXxiOB9OZJuppFm52wx1cowqo5N4Nalv7V3ar2EC+D
tv2jJzAlMA8GA1UdEQQIMAaHBMsAcQcwEgYDVR0TAQH/BAgwBgEB/wIBADAKBggq
hkjOPQQDAgNJADBGAiEA54qlUyOzH/gS3xP+iBjFjmrfSujIF9wOXAN5ChiK6ysC
IQCIOSNnCSxgSYUxuZ6e5LD8zVjDMQ439vIYMIq8CKMRTw==
-----END CERTIFICATE-----
"""
TLS_FINGERPRINT = ("SHA256:A8:76:E5:3C:89:14:68:6E:C8:2A:4F:6E:D1:F7:DE:37:E3:83:BA:99:C8:7B:86:86:BD:D3:69:15:54:"
                   "22:13:E9")


def seed_remote(ws: Workspace) -> tuple[Toolbox, Toolbox]:
    """``cloud`` (a droplet in fra1 with one server) and ``edge`` (an SSH host)."""
    with ws.change() as change:
        r = change.repos
        cloud = r.toolboxes.put(Toolbox(
            name="cloud", kind=ToolboxKind.DROPLET, ssh_target="root@203.0.113.7", ssh_host_key=HOST_KEY,
            droplet_id=412345678, region="fra1", size="s-1vcpu-1gb", gateway_address="https://203.0.113.7:8443",
            gateway_cert=GATEWAY_CERT, created=WHEN))
        edge = r.toolboxes.put(Toolbox(
            name="edge", kind=ToolboxKind.SSH, ssh_target="deploy@edge.example.org:2222", ssh_host_key=HOST_KEY,
            gateway_address="https://edge.example.org:8443", gateway_cert=GATEWAY_CERT, created=WHEN))
        r.servers.put(ServerInstance(toolbox=cloud.id, name="time", catalog_id="time",
                                     image="tbx/time:0123456789abcdef", desired_state=DesiredState.RUNNING,
                                     created=WHEN))
    return cloud, edge


def seed_orphan(ws: Workspace) -> Orphan:
    """A droplet whose add failed and whose clean-up could not delete it: ``tbx-stray``."""
    with ws.change() as change:
        return change.repos.orphans.put(Orphan(
            droplet_id=412349999, name="tbx-stray", region="ams3", size="s-1vcpu-2gb", price_monthly=12.0,
            cause=OrphanCause.FAILED_ADD, toolbox="stray", found=WHEN,
            error="droplet 412349999 could not be deleted within 180s: DigitalOcean refused DELETE "
                  "/v2/droplets/412349999 (Droplet already has a pending event)"))
