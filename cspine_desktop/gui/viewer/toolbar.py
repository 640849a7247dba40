"""The viewer's tool row: navigate / ruler / angle / Cobb / ROI (left button draws with the
chosen tool; Esc-free: choosing Navigate gives the window/level drag back), clear the
measurements, and the thick-slab projection (off / MIP / MinIP, thickness in mm)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QWidget,
)

from ..models import ViewerModel

TOOLS = (
    ("navigate", "Navigate", "Left-drag: window/level; click: move the crosshair"),
    ("ruler", "Ruler", "Drag a line: its length in mm"),
    ("angle", "Angle", "Drag the first arm to the vertex, then click the end of the second arm"),
    ("cobb", "Cobb", "Drag one endplate line, then the other: the angle between them"),
    ("roi", "ROI", "Drag a box: mean and SD of HU inside its ellipse, and its area"),
)
SLAB_CHOICES = (("off", "Off"), ("mip", "MIP"), ("minip", "MinIP"))


class ViewerToolbar(QWidget):
    def __init__(self, model: ViewerModel, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        row = QHBoxLayout(self)
        row.setContentsMargins(2, 2, 2, 2)
        self.group = QButtonGroup(self)
        self.tool_buttons: dict[str, QToolButton] = {}
        for key, text, tip in TOOLS:
            button = QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.setCheckable(True)
            button.setChecked(key == "navigate")
            button.clicked.connect(lambda _c=False, k=key: model.measurements.set_tool(k))
            self.group.addButton(button)
            self.tool_buttons[key] = button
            row.addWidget(button)
        self.clear_button = QToolButton()
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip("Remove every measurement of this study")
        self.clear_button.clicked.connect(lambda _c=False: model.measurements.clear())
        row.addWidget(self.clear_button)
        row.addStretch(1)
        self.slab_mode = QComboBox()
        for key, text in SLAB_CHOICES:
            self.slab_mode.addItem(text, key)
        self.slab_mode.setToolTip("Thick-slab projection around each view's slice")
        self.slab_mode.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.slab_mm = QDoubleSpinBox()
        self.slab_mm.setRange(1.0, 60.0)
        self.slab_mm.setSingleStep(1.0)
        self.slab_mm.setDecimals(0)
        self.slab_mm.setSuffix(" mm")
        self.slab_mm.setValue(model.slab_mm)
        self.slab_mode.currentIndexChanged.connect(self._slab_changed)
        self.slab_mm.valueChanged.connect(self._slab_changed)
        row.addWidget(QLabel("Slab"))
        row.addWidget(self.slab_mode)
        row.addWidget(self.slab_mm)

    def _slab_changed(self, *_: object) -> None:
        self.model.set_slab(self.slab_mode.currentData(), self.slab_mm.value())
