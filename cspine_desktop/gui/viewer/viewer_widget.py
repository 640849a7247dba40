"""Three linked planes: sagittal (large, where spine readers live), axial and coronal.

Keys (OHIF): ↑/↓ previous/next slice in the active view, PageUp/PageDown ten slices back or
on, Home/End first/last slice, 1–4 window presets (bone, soft tissue, brain, lung), i invert,
Space reset. Above the views: the measurement tools and the thick-slab projection.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from ..models import Orientation, ViewerModel
from .slice_view import SliceView
from .toolbar import ViewerToolbar

PRESET_KEYS: dict[int, int] = {Qt.Key.Key_1: 1, Qt.Key.Key_2: 2, Qt.Key.Key_3: 3, Qt.Key.Key_4: 4}


class ViewerWidget(QWidget):
    """Hosts the three :class:`SliceView` s and handles the keyboard for the active one.
    ``probed`` re-emits whatever the view under the mouse reports (a Probe or None)."""

    probed = Signal(object)

    def __init__(self, model: ViewerModel, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.views = {o: SliceView(model, o) for o in Orientation}
        for view in self.views.values():
            view.probed.connect(self.probed)
            view.activated.connect(lambda *_: self.setFocus())
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.views[Orientation.AXIAL])
        right.addWidget(self.views[Orientation.CORONAL])
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.views[Orientation.SAGITTAL])
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        self.splitter = split
        self._user_sized = False
        split.splitterMoved.connect(self._splitter_moved)
        self.toolbar = ViewerToolbar(model)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.toolbar)
        layout.addWidget(split, 1)

    def _splitter_moved(self, *_: object) -> None:
        self._user_sized = True

    def resizeEvent(self, event) -> None:
        """Sagittal keeps 55 % of the width, axial/coronal the rest, until the user drags."""
        super().resizeEvent(event)
        if not self._user_sized:
            w = self.width()
            self.splitter.setSizes([int(w * 0.55), w - int(w * 0.55)])

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self.model.has_volume:
            super().keyPressEvent(event)
            return
        key, o = event.key(), self.model.active
        if key == Qt.Key.Key_Up:
            self.model.step_slice(o, -1)
        elif key == Qt.Key.Key_Down:
            self.model.step_slice(o, 1)
        elif key == Qt.Key.Key_PageUp:
            self.model.page_slice(o, -1)
        elif key == Qt.Key.Key_PageDown:
            self.model.page_slice(o, 1)
        elif key == Qt.Key.Key_Home:
            self.model.first_slice(o)
        elif key == Qt.Key.Key_End:
            self.model.last_slice(o)
        elif key in PRESET_KEYS:
            self.model.apply_preset(PRESET_KEYS[key])
        elif key == Qt.Key.Key_I:
            self.model.toggle_invert()
        elif key == Qt.Key.Key_Space:
            self.model.reset()
        else:
            super().keyPressEvent(event)
            return
        event.accept()
