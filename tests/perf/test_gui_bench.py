"""Viewer speed: time to show the next slice of a 300 × 512² study with labels and heat-map.

Run: .venv/bin/python -m pytest tests/perf/test_gui_bench.py -m perf -s
Results go to the "Desktop viewer and GUI responsiveness" section of docs/benchmarks.md.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from cspine_desktop.gui.models import Orientation, ViewerModel
from cspine_desktop.gui.models.render import render_slice
from cspine_desktop.imaging.volume import Volume

pytestmark = pytest.mark.perf

SHAPE = (300, 512, 512)
SPACING = (0.8, 0.35, 0.35)


def _neck() -> tuple[Volume, np.ndarray, np.ndarray]:
    """Soft-tissue cylinder with noise, seven labelled bone blocks, heat on one of them."""
    rng = np.random.default_rng(0)
    nz, ny, nx = SHAPE
    yy, xx = np.mgrid[0:ny, 0:nx]
    body = (yy - ny / 2) ** 2 + (xx - nx / 2) ** 2 < (0.4 * nx) ** 2
    bone = (np.abs(yy - ny / 2 - 40) < 45) & (np.abs(xx - nx / 2) < 55)
    hu = np.full(SHAPE, -1000, np.int16)
    hu[:, body] = 40
    labels = np.zeros(SHAPE, np.uint8)
    per = nz // 7
    for v in range(7):
        zs = slice(v * per, (v + 1) * per - 4)
        hu[zs][:, bone] = 700
        labels[zs][:, bone] = 7 - v
    hu += rng.normal(0, 30, SHAPE).astype(np.int16)
    heat = np.zeros(SHAPE, np.float32)
    heat[(labels == 5) & (xx > nx / 2)[None]] = 0.9
    affine = np.diag([SPACING[2], SPACING[1], SPACING[0], 1.0])
    return Volume(hu, affine, SPACING), labels, heat


@pytest.fixture(scope="module")
def model():
    vol, labels, heat = _neck()
    m = ViewerModel()
    m.set_volume(vol)
    m.overlays.set_arrays(labels, heat)
    return m


def _time(fn, n: int = 30) -> tuple[float, float]:
    """Median (wall ms, CPU ms of this thread) per call; CPU time is what the machine's other
    load cannot inflate."""
    fn()
    wall, cpu = [], []
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return 1000.0 * float(np.median(wall)), 1000.0 * float(np.median(cpu))


def test_next_slice_render_time(model):
    rows = []
    for o in Orientation:
        for edges in (False, True):
            model.overlays.set_edges_visible(edges)

            def step(o=o):
                model.step_slice(o, 1 if model.slice_index(o) < 200 else -150)
                render_slice(model, o)

            rows.append((o.value, "labels+heat" + ("+edges" if edges else ""), _time(step)))
    model.overlays.set_edges_visible(False)
    print("\n| plane | layers | wall ms | CPU ms |\n|---|---|---|---|")
    for plane, layers, (wall, cpu) in rows:
        print(f"| {plane} | {layers} | {wall:.1f} | {cpu:.1f} |")
    assert all(cpu < 1000 for *_, (_wall, cpu) in rows)


def test_next_slice_on_screen(qtbot, model):
    """Step + render + paint (scaled to the widget) of the three-view viewer."""
    from cspine_desktop.gui.viewer import ViewerWidget

    widget = ViewerWidget(model)
    widget.resize(1400, 900)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    view = widget.views[Orientation.AXIAL]

    def step():
        model.step_slice(
            Orientation.AXIAL, 1 if model.slice_index(Orientation.AXIAL) < 200 else -150
        )
        view.grab()  # paints synchronously (render + scaled drawImage + crosshair + text)

    wall, cpu = _time(step)
    size = f"{view.width()}×{view.height()} px"
    print(f"\naxial step + paint at {size}: {wall:.1f} ms wall, {cpu:.1f} ms CPU")
    assert cpu < 1000
