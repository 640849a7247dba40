"""Overlay controls: vertebra labels (opacity, outline, per-vertebra visibility), fracture
heat-map (toggle, opacity), edge feature map (toggle, opacity)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from ...vertebrae import VERTEBRAE
from ..models import OverlayModel
from .heat_scale import HeatScaleBar


def colour_icon(rgb: tuple[int, int, int], size: int = 12) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(QColor(*rgb))
    return QIcon(pix)


def _opacity_slider(value: float, on_change) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, 100)
    slider.setValue(round(value * 100))
    slider.valueChanged.connect(lambda v: on_change(v / 100.0))
    return slider


class OverlayPanel(QWidget):
    """Edits an :class:`OverlayModel`; enables the controls whose arrays exist."""

    def __init__(self, overlays: OverlayModel, parent=None) -> None:
        super().__init__(parent)
        self.overlays = overlays
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)

        self.labels_box = QGroupBox("Vertebra labels")
        grid = QGridLayout(self.labels_box)
        self.labels_check = QCheckBox("Show")
        self.labels_check.setChecked(overlays.labels_visible)
        self.labels_check.toggled.connect(overlays.set_labels_visible)
        self.outline_check = QCheckBox("Outline")
        self.outline_check.setChecked(overlays.outline)
        self.outline_check.toggled.connect(overlays.set_outline)
        self.label_opacity = _opacity_slider(overlays.label_opacity, overlays.set_label_opacity)
        grid.addWidget(self.labels_check, 0, 0)
        grid.addWidget(self.outline_check, 0, 1)
        grid.addWidget(QLabel("Opacity"), 1, 0)
        grid.addWidget(self.label_opacity, 1, 1, 1, 3)
        self.vertebra_checks: dict[int, QCheckBox] = {}
        for i, v in enumerate(VERTEBRAE):
            check = QCheckBox(v.name)
            check.setIcon(colour_icon(v.rgb))
            check.setChecked(overlays.is_vertebra_visible(v.label))
            check.toggled.connect(
                lambda on, label=v.label: overlays.set_vertebra_visible(label, on)
            )
            self.vertebra_checks[v.label] = check
            grid.addWidget(check, 2 + i // 4, i % 4)
        layout.addWidget(self.labels_box)

        self.heat_box = QGroupBox("Fracture heat-map")
        heat = QGridLayout(self.heat_box)
        self.heat_check = QCheckBox("Show")
        self.heat_check.setChecked(overlays.heatmap_visible)
        self.heat_check.toggled.connect(overlays.set_heatmap_visible)
        self.heat_opacity = _opacity_slider(overlays.heatmap_opacity, overlays.set_heatmap_opacity)
        self.heat_below = QCheckBox("Show below threshold")
        self.heat_below.setToolTip(
            "Off: only heat at or above the analysis's threshold is drawn (the greyed part of "
            "the bar is hidden)."
        )
        self.heat_below.setChecked(overlays.heat_below_threshold)
        self.heat_below.toggled.connect(overlays.set_heat_below_threshold)
        self.heat_scale = HeatScaleBar(overlays)
        heat.addWidget(self.heat_check, 0, 0)
        heat.addWidget(self.heat_opacity, 0, 1)
        heat.addWidget(self.heat_scale, 1, 0, 1, 2)
        heat.addWidget(self.heat_below, 2, 0, 1, 2)
        layout.addWidget(self.heat_box)

        self.edge_box = QGroupBox("Edge feature map")
        row = QHBoxLayout(self.edge_box)
        self.edge_check = QCheckBox("Show")
        self.edge_check.setChecked(overlays.edges_visible)
        self.edge_check.toggled.connect(overlays.set_edges_visible)
        self.edge_opacity = _opacity_slider(overlays.edge_opacity, overlays.set_edge_opacity)
        row.addWidget(self.edge_check)
        row.addWidget(self.edge_opacity)
        layout.addWidget(self.edge_box)
        layout.addStretch(1)

        overlays.changed.connect(self._sync_enabled)
        self._sync_enabled()

    def _sync_enabled(self) -> None:
        self.labels_box.setEnabled(self.overlays.has_labels)
        self.heat_box.setEnabled(self.overlays.has_heatmap)
