"""First contact with an SSH host: show its host key fingerprint, trust it or not.

The question comes from the add worker's thread (``add_ssh``'s ``accept_host_key``
callback); ``ThreadQuestions`` pushes the modal on the UI thread and blocks the worker
until the user answers — or until the screen goes away, which answers no.
"""

from __future__ import annotations

import concurrent.futures

from textual.app import App

from console.tui.modals.confirm import ConfirmModal

HOST_KEY_WAIT = 300.0
"""Seconds an add waits for the user's answer before giving up (as a no)."""


class HostKeyModal(ConfirmModal):
    def __init__(self, toolbox: str, target: str, fingerprint: str) -> None:
        super().__init__(
            f"Trust the host key of {target}?",
            f"First contact with {target} for toolbox {toolbox}. The host presented the SSH key\n\n"
            f"    {fingerprint}\n\nCompare it with the host's own (on the host: ssh-keygen -lf "
            "/etc/ssh/ssh_host_ed25519_key.pub). Once trusted it is pinned: a different key later is refused.",
            confirm="Trust", danger=False)


class ThreadQuestions:
    """Yes/no modals asked from worker threads and answered on the UI thread."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._open: set[concurrent.futures.Future[bool]] = set()

    def ask(self, modal: ConfirmModal, timeout: float = HOST_KEY_WAIT) -> bool:
        """From a worker thread: the user's answer (False on timeout or when cancelled)."""
        answer: concurrent.futures.Future[bool] = concurrent.futures.Future()
        self.app.call_from_thread(self._push, modal, answer)
        try:
            return answer.result(timeout)
        except concurrent.futures.TimeoutError:
            return False

    def _push(self, modal: ConfirmModal, answer: concurrent.futures.Future[bool]) -> None:
        self._open.add(answer)

        def answered(yes: bool | None) -> None:
            self._open.discard(answer)
            if not answer.done():
                answer.set_result(bool(yes))

        self.app.push_screen(modal, answered)

    def cancel_all(self) -> None:
        """Whoever waits is told no (the screen asking is going away)."""
        for answer in list(self._open):
            if not answer.done():
                answer.set_result(False)
        self._open.clear()
