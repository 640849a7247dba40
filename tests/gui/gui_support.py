"""Helpers for the GUI tests: tiny synthetic volumes, a fake clock, a test password."""

from __future__ import annotations

import numpy as np

from cspine_desktop.imaging.volume import Volume


def coded_volume(
    shape: tuple[int, int, int] = (12, 16, 10),
    spacing: tuple[float, float, float] = (2.0, 0.5, 0.5),
    head_first: bool = True,
    meta: dict | None = None,
) -> Volume:
    """HU = 1000·z + 10·y + x/10 so every voxel tells where it is; standard axial affine
    (columns → L, rows → P); slice index increasing toward the head when ``head_first``."""
    z, y, x = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    hu = (1000.0 * z + 10.0 * y + x / 10.0).astype(np.float32)
    sz, sy, sx = spacing
    affine = np.array(
        [
            [sx, 0, 0, -10.0],
            [0, sy, 0, 20.0],
            [0, 0, sz if head_first else -sz, 30.0],
            [0, 0, 0, 1],
        ]
    )
    return Volume(hu=hu, affine=affine, spacing=spacing, meta=dict(meta or {}))


def neck_volume(
    shape: tuple[int, int, int] = (40, 48, 48),
) -> tuple[Volume, np.ndarray, np.ndarray]:
    """A cylinder of soft tissue holding a column of 'vertebrae' (bone discs, labels 1–7 from
    head to feet) and a fracture heat-map on C5. Returns (volume, labels, heatmap)."""
    nz, ny, nx = shape
    z, y, x = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    hu = np.full(shape, -1000, np.int16)
    hu[(y - ny / 2) ** 2 + (x - nx / 2) ** 2 < (nx * 0.45) ** 2] = 40
    body = (y - ny / 2) ** 2 + (x - nx / 2) ** 2 < (nx * 0.18) ** 2
    labels = np.zeros(shape, np.uint8)
    per = nz // 7
    for k in range(7):
        # index 0 is the feet (head_first affine): C1 sits at the top, highest z
        z0 = nz - (k + 1) * per
        sel = body & (z >= z0) & (z < z0 + per - 1)
        hu[sel] = 700
        labels[sel] = k + 1
    heat = np.zeros(shape, np.float32)
    heat[(labels == 5) & (x > nx / 2)] = 0.9
    affine = np.diag([0.8, 0.8, 2.0, 1.0])
    vol = Volume(
        hu=hu,
        affine=affine,
        spacing=(2.0, 0.8, 0.8),
        meta={
            "PatientID": "PHANTOM-1",
            "StudyInstanceUID": "1.2.3",
            "SeriesInstanceUID": "1.2.3.4",
        },
    )
    return vol, labels, heat


PASSWORD = "Correct-horse-7"
ADMIN_PASSWORD = "Root-secret-77x"


class FakeClock:
    """Injectable clock: ``clock()`` returns the current fake time; ``advance(s)`` moves it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def open_and_analyse(qtbot, window, path):
    """Open ``path`` in the main window as a user does and wait for its analysis."""
    with qtbot.waitSignal(window.controller.analysis_finished, timeout=20000):
        window.open_path(path)
    return window.controller.current


def shown_viewer(qtbot, width: int, height: int):
    """A ViewerWidget on the synthetic neck (labels and heat-map), shown at ``width``×``height``."""
    from cspine_desktop.gui.models import ViewerModel
    from cspine_desktop.gui.viewer import ViewerWidget

    model = ViewerModel()
    vol, labels, heat = neck_volume()
    model.set_volume(vol)
    model.overlays.set_arrays(labels, heat)
    widget = ViewerWidget(model)
    widget.resize(width, height)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget
