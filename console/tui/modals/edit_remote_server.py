"""``e`` on Servers for a remote server: its URL and headers.

The modal only collects and validates (``EditRemoteForm``); the edit itself (a session
with the new settings first, then the vault) runs in the Servers screen's worker.
"""

from __future__ import annotations

from console.model import ServerInstance
from console.tui.modals.edit_server import EditServerModal
from console.tui.widgets.edit_remote_form import EditRemoteForm


class EditRemoteModal(EditServerModal):
    """``EditServerModal``'s frame, keys and buttons around ``EditRemoteForm``."""

    def __init__(self, label: str, server: ServerInstance) -> None:
        super().__init__(label, None, server, check_paths=False)  # type: ignore[arg-type] - no catalog entry

    def intro(self) -> str:
        return ("Saving connects with these settings first and keeps them only if the server answers; its tools are "
                "discovered again (a changed one waits for approval), its approvals and grants are kept.")

    def form(self) -> EditRemoteForm:  # type: ignore[override]
        return EditRemoteForm(self.server)
