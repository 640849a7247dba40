"""What is drawn over the CT: vertebra labels, the fracture heat-map, the edge feature map.

Arrays live on the source grid of the Volume ([z, y, x], same shape as ``Volume.hu``):
labels uint8 (0 background, 1–7 = C1–C7), heat-map float32 in [0, 1]. The original images are
never altered; overlays are blended on the displayed copy only.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ...vertebrae import NAMES, VERTEBRAE
from .events import Event

DEFAULT_LABEL_OPACITY = 0.4
DEFAULT_HEATMAP_OPACITY = 0.6
DEFAULT_EDGE_OPACITY = 0.8
DEFAULT_HEAT_THRESHOLD = 0.5  # until an analysis gives its own
HEAT_FLOOR = 0.05  # heat below this is never drawn, even when asked to show all


def heat_threshold_of(
    thresholds: Mapping[str, float], patient_threshold: float | None
) -> float | None:
    """The threshold the heat-map is drawn against: the lowest vertebra threshold.

    The heat is a plane's fracture probability on the vertebra scale, so heat at or above a
    vertebra threshold marks a place that alone would call its vertebra fractured. The patient
    threshold is no guide: it can be 1 (the patient is then called through its vertebrae),
    which would hide all heat. Without vertebra thresholds, the patient's is used (None: the
    default).
    """
    levels = [float(thresholds[n]) for n in NAMES if n in thresholds]
    return min(levels) if levels else patient_threshold


class OverlayModel:
    """Overlay arrays plus their display switches; emits ``changed`` after every edit."""

    def __init__(self) -> None:
        self.changed = Event()
        self.labels: np.ndarray | None = None
        self.heatmap: np.ndarray | None = None
        self.labels_visible = True
        self.label_opacity = DEFAULT_LABEL_OPACITY
        self.outline = True
        self.hidden_labels: set[int] = set()
        self.heatmap_visible = True
        self.heatmap_opacity = DEFAULT_HEATMAP_OPACITY
        # heat below the analysis's threshold is hidden unless the reader asks to see it
        self.heat_threshold = DEFAULT_HEAT_THRESHOLD
        self.heat_below_threshold = False
        self.edges_visible = False
        self.edge_opacity = DEFAULT_EDGE_OPACITY

    # ---------------------------------------------------------------- data
    def set_arrays(self, labels: np.ndarray | None, heatmap: np.ndarray | None) -> None:
        """Attach analysis output (or ``None`` to clear it)."""
        self.labels = None if labels is None else np.asarray(labels, dtype=np.uint8)
        self.heatmap = None if heatmap is None else np.asarray(heatmap, dtype=np.float32)
        self.changed.emit()

    def clear(self) -> None:
        self.set_arrays(None, None)

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    @property
    def has_heatmap(self) -> bool:
        return self.heatmap is not None

    # ---------------------------------------------------------------- switches
    def set_labels_visible(self, on: bool) -> None:
        self.labels_visible = bool(on)
        self.changed.emit()

    def set_label_opacity(self, opacity: float) -> None:
        self.label_opacity = float(np.clip(opacity, 0.0, 1.0))
        self.changed.emit()

    def set_outline(self, on: bool) -> None:
        self.outline = bool(on)
        self.changed.emit()

    def set_vertebra_visible(self, label: int, visible: bool) -> None:
        if label not in {v.label for v in VERTEBRAE}:
            raise ValueError(f"no vertebra with label {label}")
        if visible:
            self.hidden_labels.discard(label)
        else:
            self.hidden_labels.add(label)
        self.changed.emit()

    def is_vertebra_visible(self, label: int) -> bool:
        return label not in self.hidden_labels

    def set_heatmap_visible(self, on: bool) -> None:
        self.heatmap_visible = bool(on)
        self.changed.emit()

    def set_heatmap_opacity(self, opacity: float) -> None:
        self.heatmap_opacity = float(np.clip(opacity, 0.0, 1.0))
        self.changed.emit()

    def set_heat_threshold(self, threshold: float | None) -> None:
        """The analysis's decision threshold (None → the default)."""
        value = DEFAULT_HEAT_THRESHOLD if threshold is None else threshold
        self.heat_threshold = float(np.clip(value, 0.0, 1.0))
        self.changed.emit()

    def set_heat_below_threshold(self, on: bool) -> None:
        self.heat_below_threshold = bool(on)
        self.changed.emit()

    @property
    def heat_floor(self) -> float:
        """The lowest heat drawn: the threshold, or nearly 0 when asked to show all."""
        return HEAT_FLOOR if self.heat_below_threshold else max(HEAT_FLOOR, self.heat_threshold)

    def set_edges_visible(self, on: bool) -> None:
        self.edges_visible = bool(on)
        self.changed.emit()

    def set_edge_opacity(self, opacity: float) -> None:
        self.edge_opacity = float(np.clip(opacity, 0.0, 1.0))
        self.changed.emit()

    # ---------------------------------------------------------------- for the renderer
    def label_lut(self) -> tuple[np.ndarray, np.ndarray]:
        """(colours float32 [8, 3] in 0–255, fill alpha float32 [8]) indexed by label value."""
        colours = np.zeros((8, 3), np.float32)
        alpha = np.zeros(8, np.float32)
        for v in VERTEBRAE:
            colours[v.label] = v.rgb
            if self.labels_visible and v.label not in self.hidden_labels:
                alpha[v.label] = self.label_opacity
        return colours, alpha
