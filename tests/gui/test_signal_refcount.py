"""The Qt binding must not lose references when the app's own signals are emitted.

PySide6 6.12.0 drops a reference to ``True`` on every ``emit`` of a Python-defined signal; a
workstation session sends thousands (progress, busy state, selection), and the interpreter
aborts with "bool_dealloc" once the count reaches zero. ``pyproject.toml`` excludes that
release; this test fails on any binding with the same defect.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal

from cspine_desktop.progress import Progress


class _Emitter(QObject):
    flag = Signal(bool)
    count = Signal(int)
    payload = Signal(object)


def test_emitting_signals_keeps_the_refcounts_of_true_and_false(qapp):
    e = _Emitter()
    seen: list[object] = []
    e.flag.connect(seen.append)
    e.count.connect(seen.append)
    e.payload.connect(seen.append)
    seen.clear()
    before = sys.getrefcount(True), sys.getrefcount(False)
    for i in range(200):
        e.flag.emit(i % 2 == 0)
        e.count.emit(i)
        e.payload.emit(Progress(0.5, "analysing"))
    seen.clear()
    after = sys.getrefcount(True), sys.getrefcount(False)
    # a correct binding leaves both unchanged; 6.12.0 loses 600 references to True here
    assert abs(after[0] - before[0]) <= 5 and abs(after[1] - before[1]) <= 5, (before, after)
