"""Errors at the GUI edge: a user-caused error becomes a plain dialog, never a traceback."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QMessageBox, QWidget

from ..errors import Cancelled, UserFacingError

log = logging.getLogger(__name__)

INTERNAL_ERROR = (
    "Something went wrong inside cspine (a bug, not your input). The details are in the log "
    "file; the study and results on disk are unchanged."
)


def show_error(parent: QWidget | None, exc: BaseException, title: str = "cspine") -> None:
    """A :class:`~cspine_desktop.errors.UserFacingError` → warning box with its plain message;
    anything else → logged with its traceback and reported as an internal error. A cancellation
    shows nothing."""
    if isinstance(exc, Cancelled):
        return
    if isinstance(exc, UserFacingError):
        QMessageBox.warning(parent, title, str(exc))
        return
    log.error("internal error", exc_info=(type(exc), exc, exc.__traceback__))
    QMessageBox.critical(parent, title, INTERNAL_ERROR)


def plain_message(exc: BaseException) -> str:
    """The text to show inline (forms): the plain message, or the internal-error notice."""
    if isinstance(exc, UserFacingError):
        return str(exc)
    log.error("internal error", exc_info=(type(exc), exc, exc.__traceback__))
    return INTERNAL_ERROR
