"""Render the workstation offscreen with a fractured phantom study and save screenshots here.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_screenshots.py [--seed 3]

The main window is saved at 1280×800 and 1920×1080 (``main-window-1280x800.png`` …), with the
reader's measurement tools in use (``measurements-*.png``: a ruler, a Cobb angle, an ROI with
mean/SD HU, the level names and a thick-slab MIP), plus the Users screen (``users.png``) and
About (``about.png``). A second study, the same phantom keeping one slice every 6 mm (over the
5 mm limit), shows an indeterminate result: no verdict, the amber banner and its reasons
(``main-window-indeterminate.png``).

The study is a synthetic phantom (``model_training.phantom``) written as a DICOM series and
opened through the normal path (load → store → job queue → results). The verdicts and overlays
come from the real analysis with the bundled model when ``assets/models/cspine-demo`` holds one;
otherwise from the phantom's ground truth (labels and fracture mask), and the files are then
named ``*-truth.png`` so nobody mistakes them for model output.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pydicom.uid

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cspine_desktop.analysis.pipeline import AnalysisOutcome  # noqa: E402
from cspine_desktop.analysis.result import (  # noqa: E402
    AnalysisResult,
    ModelInfo,
    PatientVerdict,
    VertebraVerdict,
)
from cspine_desktop.gui.auth import LoginDialog  # noqa: E402
from cspine_desktop.gui.dialogs.about import AboutDialog  # noqa: E402
from cspine_desktop.gui.dialogs.users_dialog import UsersDialog  # noqa: E402
from cspine_desktop.gui.main_window import MainWindow  # noqa: E402
from cspine_desktop.imaging import load_study  # noqa: E402
from cspine_desktop.inference.bundle import CARD_NAME  # noqa: E402
from cspine_desktop.inference.resources import demo_model_dir  # noqa: E402
from cspine_desktop.services import Services  # noqa: E402
from cspine_desktop.services.analysis import (  # noqa: E402
    OVERLAY_ARTIFACT,
    AnalysisService,
    save_overlays,
)
from cspine_desktop.services.autolock import AutoLock  # noqa: E402
from cspine_desktop.settings import Settings  # noqa: E402
from cspine_desktop.vertebrae import NAMES  # noqa: E402
from model_training.phantom import PhantomConfig, generate_study  # noqa: E402
from model_training.phantom.dicom_writer import write_ct_series  # noqa: E402

PASSWORD = "Screenshot-pass-1"
SIZES = ((1280, 800), (1920, 1080))


def truth_handler(study):
    """A job handler that answers with the phantom's ground truth (no model involved)."""

    def run(ctx) -> dict:
        volume = load_study(ctx.files_dir)
        labels = study.in_volume_order(study.labels).astype(np.uint8)
        mask = study.in_volume_order(study.fracture_mask).astype(np.float32)
        import cv2

        heat = np.stack([cv2.GaussianBlur(m, (0, 0), 2.0) for m in mask])
        heat = np.clip(heat * 1.5, 0.0, 1.0).astype(np.float32)
        verdicts = []
        for k, name in enumerate(NAMES, start=1):
            zs = np.nonzero((labels == k).any(axis=(1, 2)))[0]
            fz = np.nonzero(((labels == k) & (mask > 0)).any(axis=(1, 2)))[0]
            present, fractured = zs.size > 0, bool(study.fractured[k - 1])
            peak = fz[fz.size // 2] if fz.size else (zs[zs.size // 2] if zs.size else None)
            verdicts.append(
                VertebraVerdict(
                    name=name,
                    present=bool(present),
                    probability=(0.97 if fractured else 0.03) if present else None,
                    fractured=fractured if present else None,
                    status="assessed" if present else "not_in_view",
                    threshold=0.5,
                    slice_range=(int(zs[0]), int(zs[-1])) if present else None,
                    peak_slice=None if peak is None else int(peak),
                    notes=("ground truth of the phantom, not a model output",),
                )
            )
        result = AnalysisResult(
            study_instance_uid=str(volume.meta.get("StudyInstanceUID", "")),
            series_instance_uid=str(volume.meta.get("SeriesInstanceUID", "")),
            model=ModelInfo("phantom ground truth", "(no model)", ""),
            backend="none",
            patient_overall=PatientVerdict(
                0.97 if any(study.fractured) else 0.03, any(study.fractured), threshold=0.5
            ),
            vertebrae=tuple(verdicts),
            thresholds={n: 0.5 for n in (*NAMES, "patient_overall")},
            warnings=("Overlays and verdicts are the phantom's ground truth, not model output.",),
            timings_s={"total": 0.0},
            patient_id=str(volume.meta.get("PatientID", "")),
        )
        outcome = AnalysisOutcome(result, volume, labels, heat)
        with tempfile.TemporaryDirectory() as tmp:
            path = save_overlays(outcome, Path(tmp) / OVERLAY_ARTIFACT)
            ctx.write_artifact(OVERLAY_ARTIFACT, "overlay", path.read_bytes())
        return result.to_dict()

    return run


def write_thick_series(study, folder: Path, apart_mm: float = 6.0) -> None:
    """The study keeping one slice every ``apart_mm`` or more: too far apart for a verdict."""
    step = int(np.ceil(apart_mm / study.spacing[0]))
    affine = study.affine.copy()
    affine[:3, 2] *= step
    write_ct_series(
        folder,
        np.ascontiguousarray(study.hu[::step]),
        affine,
        # new UIDs derived from the study's (appending to a 64-character UID breaks the VR)
        study_uid=pydicom.uid.generate_uid(entropy_srcs=[study.study_uid, "thick"]),
        series_uid=pydicom.uid.generate_uid(entropy_srcs=[study.series_uid, "thick"]),
        patient_id=study.patient_id,
        slice_thickness_mm=round(study.spacing[0] * step, 2),
    )


def most_suspicious(opened) -> int:
    """Row (0 = C1) of the vertebra with the highest probability; ties go to the one with the
    most heat-map on it (the most visible fracture)."""

    def key(k: int) -> tuple[float, float]:
        v = opened.result.vertebrae[k]
        heat = float(opened.heatmap[opened.labels == k + 1].sum()) if v.present else 0.0
        return (v.probability or 0.0, heat)

    return max(range(len(NAMES)), key=key)


def show_probe_at_crosshair(window) -> None:
    """What the status bar shows with the mouse on the crosshair of the sagittal view."""
    model = window.viewer_model
    o = next(o for o in model.planes if o.value == "sagittal")
    row, col = model.planes[o].to_display(model.cursor)
    window.status.show_probe(model.probe(o, row, col))


def draw_measurements(window) -> None:
    """A ruler along the front of C3–C7 and a Cobb angle between C3's upper and C7's lower
    endplate (sagittal), an ROI in C5's body (axial), with a 10 mm MIP slab."""
    model = window.viewer_model
    ms = model.measurements
    planes = {o.value: o for o in model.planes}
    sag, ax = planes["sagittal"], planes["axial"]
    labels = window.controller.current.labels
    model.jump_to_vertebra(5, None)
    z, _y, x = model.cursor
    plane = model.planes[sag]

    def extent(label: int) -> tuple[float, float, float]:
        """(top row, bottom row, front column) of ``label`` on the sagittal view."""
        zs, ys, _xs = np.nonzero(labels == label)
        rows = [plane.to_display((zz, ys.min(), x))[0] for zz in (zs.min(), zs.max())]
        return min(rows), max(rows), plane.to_display((z, ys.min(), x))[1]

    have = labels is not None and all((labels == k).any() for k in (3, 7))
    if have:
        top, _b, front3 = extent(3)
        _t, bottom, front7 = extent(7)
        front = min(front3, front7) - 8
    else:
        rows, cols = plane.image_shape
        top, bottom, front = rows * 0.3, rows * 0.8, cols * 0.3

    def stroke(o, a, b) -> None:
        ms.press(o, model.slice_index(o), a)
        ms.drag(b)
        ms.release(b)

    ms.set_tool("ruler")
    stroke(sag, (top, front), (bottom, front))
    ms.set_tool("cobb")
    stroke(sag, (top, front + 10), (top - 3, front + 45))
    stroke(sag, (bottom, front + 10), (bottom + 2, front + 45))
    ms.set_tool("roi")
    r, c = model.planes[ax].to_display(model.cursor)
    stroke(ax, (r - 4, c - 4), (r + 4, c + 4))
    ms.set_tool("navigate")
    window.viewer.toolbar.slab_mode.setCurrentIndex(1)  # MIP, 10 mm


def users_screen(services, admin) -> UsersDialog:
    """The Users screen with a sign-up waiting for approval and a locked account."""
    services.users.add_user("b.reader", PASSWORD, actor=admin, full_name="Dr B. Reader")
    services.users.sign_up("c.resident", PASSWORD, full_name="Dr C. Resident")
    for _ in range(services.settings.max_failed_logins):  # failed sign-ins lock the account
        services.users.throttle.failure("b.reader", None)
    dialog = UsersDialog(services.users, admin)
    return dialog


def wait_for(signal, timeout_s: float) -> bool:
    loop = QEventLoop()
    fired = []
    signal.connect(lambda *a: (fired.append(a), loop.quit()))
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    return bool(fired)


def settle(ms: int = 300) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--truth", action="store_true", help="use the phantom truth even if a model exists"
    )
    args = parser.parse_args(argv)

    app = QApplication.instance() or QApplication([])
    study = generate_study(args.seed, PhantomConfig(fracture_prevalence=1.0))
    use_model = (demo_model_dir() / CARD_NAME).is_file() and not args.truth
    suffix = "" if use_model else "-truth"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "study"
        write_ct_series(
            folder,
            study.hu,
            study.affine,
            study_uid=study.study_uid,
            series_uid=study.series_uid,
            patient_id=study.patient_id,
            slice_thickness_mm=study.acquisition.slice_thickness_mm,
        )
        settings = Settings.load({"data_dir": str(Path(tmp) / "data")}, env={})
        handler = AnalysisService(settings).run_job if use_model else truth_handler(study)
        services = Services.open(settings, handler=handler, bcrypt_rounds=4)
        try:
            user = services.users.create_first_admin("reader", PASSWORD, full_name="Dr A. Reader")
            login = LoginDialog(services.users)
            login.name_edit.setText("reader")
            login.show()
            settle()
            login.grab().save(str(args.out / "login.png"))
            login.close()

            window = MainWindow(services, user, settings, autolock=AutoLock(0))
            window.resize(1680, 1000)
            window.show()
            settle(500)
            window.open_path(folder)
            if not wait_for(window.controller.analysis_finished, 900):
                print("the analysis did not finish", file=sys.stderr)  # noqa: T201
                return 1
            opened = window.controller.current
            row = most_suspicious(opened)
            window.results.table.selectRow(row)
            window.results.table.cellClicked.emit(row, 0)
            show_probe_at_crosshair(window)
            for w, h in SIZES:
                window.resize(w, h)
                settle()
                window.grab().save(str(args.out / f"main-window-{w}x{h}{suffix}.png"))
            window.resize(*SIZES[0])
            window.viewer.views[window.viewer_model.active].setFocus()
            window.viewer.grab().save(str(args.out / f"viewer{suffix}.png"))
            window.overlay_panel.edge_check.setChecked(True)
            window.overlay_panel.labels_check.setChecked(False)
            settle()
            window.viewer.grab().save(str(args.out / f"viewer-edges{suffix}.png"))
            window.overlay_panel.edge_check.setChecked(False)
            window.overlay_panel.labels_check.setChecked(True)
            draw_measurements(window)
            for w, h in SIZES:
                window.resize(w, h)
                settle()
                window.grab().save(str(args.out / f"measurements-{w}x{h}{suffix}.png"))
            window.viewer.toolbar.slab_mode.setCurrentIndex(0)
            window.resize(*SIZES[0])
            users = users_screen(services, user)
            users.show()
            settle(800)
            users.table.selectRow(1)  # the sign-up waiting for approval
            settle()
            users.grab().save(str(args.out / "users.png"))
            users.close()
            about = AboutDialog(settings, window)
            about.show()
            settle()
            about.grab().save(str(args.out / "about.png"))
            about.close()
            if use_model:
                thick = Path(tmp) / "thick"
                write_thick_series(study, thick)
                window.open_path(thick)
                if wait_for(window.controller.analysis_finished, 900):
                    window.results.table.selectRow(3)
                    settle()
                    window.grab().save(str(args.out / "main-window-indeterminate.png"))
                else:
                    print("the thick-slice analysis did not finish", file=sys.stderr)  # noqa: T201
            window.guard.lock_now()
            settle()
            window.grab().save(str(args.out / "locked.png"))
            window.close()
        finally:
            from PySide6.QtCore import QThreadPool

            QThreadPool.globalInstance().waitForDone(30000)
            services.close()
    print(f"screenshots written to {args.out} ({'model' if use_model else 'phantom truth'})")  # noqa: T201
    app.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
