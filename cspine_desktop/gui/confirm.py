"""Confirmations for destructive or interrupting actions, naming the patient and study.

Every destructive action (delete a study, cancel an analysis, quit during one, overwrite a
file, disable an account) asks first, in words that say whom and what it concerns, with the
safe answer as the default button.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from .models.patient import describe_record, describe_study

__all__ = ["confirm", "describe_record", "describe_study"]


def confirm(parent: QWidget | None, title: str, text: str, action: str) -> bool:
    """Ask; True only when the user pressed the button named ``action`` (Cancel is default)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(text)
    go = box.addButton(action, QMessageBox.ButtonRole.DestructiveRole)
    keep = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(keep)
    box.setEscapeButton(keep)
    box.exec()
    return box.clickedButton() is go
