"""Answer the modal question a click opens, as a user would: wait for the message box, read
it, press one of its buttons with the mouse."""

from __future__ import annotations

from contextlib import contextmanager

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QAbstractButton, QApplication, QMessageBox


@contextmanager
def answering(qtbot, button_text: str, seen: list[str] | None = None):
    """Inside the block, the next message box that opens gets ``button_text`` clicked; its
    text is appended to ``seen``. Fails if no box opened."""
    texts = seen if seen is not None else []
    before = len(texts)
    timer = QTimer()
    timer.setInterval(20)

    def poll() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox) or not box.isVisible():
            return
        timer.stop()
        texts.append(box.text())
        buttons = [b for b in box.findChildren(QAbstractButton) if b.text() == button_text]
        assert buttons, f"no button {button_text!r} in {[b.text() for b in box.buttons()]}"
        qtbot.mouseClick(buttons[0], Qt.MouseButton.LeftButton)

    timer.timeout.connect(poll)
    timer.start()
    try:
        yield texts
    finally:
        timer.stop()
    assert len(texts) > before, "no confirmation was shown"
