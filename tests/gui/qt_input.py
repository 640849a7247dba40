"""Synthetic mouse input with explicit button state (QTest.mouseMove carries no buttons)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QWidget

NO_MOD = Qt.KeyboardModifier.NoModifier


def _send(widget: QWidget, kind, pos: QPointF, button, buttons, modifiers=NO_MOD) -> None:
    glob = QPointF(widget.mapToGlobal(pos.toPoint()))
    QApplication.sendEvent(widget, QMouseEvent(kind, pos, glob, button, buttons, modifiers))


def drag(widget: QWidget, button, start, end, steps: int = 5, modifiers=NO_MOD) -> None:
    """Press ``button`` at ``start``, move in ``steps`` to ``end``, release."""
    a, b = QPointF(*start), QPointF(*end)
    _send(widget, QEvent.Type.MouseButtonPress, a, button, button, modifiers)
    for i in range(1, steps + 1):
        p = a + (b - a) * (i / steps)
        _send(widget, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, button, modifiers)
    _send(widget, QEvent.Type.MouseButtonRelease, b, button, Qt.MouseButton.NoButton, modifiers)


def click(widget: QWidget, pos, button=Qt.MouseButton.LeftButton) -> None:
    drag(widget, button, pos, pos, steps=0)


def hover(widget: QWidget, pos) -> None:
    p = QPointF(*pos)
    _send(widget, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)


def wheel(widget: QWidget, pos, notches: int) -> None:
    """``notches`` > 0 = wheel turned away from the user (up)."""
    p = QPointF(*pos)
    event = QWheelEvent(
        p,
        QPointF(widget.mapToGlobal(p.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        NO_MOD,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)
