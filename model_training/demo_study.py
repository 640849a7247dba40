"""Make the bundled demo study: one phantom CT with one known fracture, as a zipped DICOM series.

``python -m model_training.demo_study [--out assets/demo]`` writes ``demo-study.zip`` (the
series, RLE-lossless DICOM) and ``demo-study.json`` (what is really in it: fractured vertebrae,
fracture kind and severity, slices). ``cspine demo`` analyses the zip with the bundled model and
prints its verdicts next to this truth. Run once, when the phantom changes; the app never
imports this module (it has no TensorFlow or phantom code at run time).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import zipfile
from pathlib import Path

from cspine_desktop import DISCLAIMER
from cspine_desktop.inference.resources import DEMO_STUDY, DEMO_TRUTH, assets_dir
from cspine_desktop.vertebrae import NAMES

DEMO_SEED = 9_000_000  # outside the training, calibration and gate seeds


def demo_config():
    """A typical thin-slice neck CT, always fractured, small enough to ship (a few MB)."""
    from model_training.phantom import PhantomConfig

    return PhantomConfig(
        matrix=192,
        slice_spacing_mm=(1.25, 1.25),
        noise_hu=(20.0, 20.0),
        fracture_prevalence=1.0,
        metal_probability=0.0,
    )


def pick_study(seed: int = DEMO_SEED, config=None, tries: int = 200):
    """The first study from ``seed`` on with exactly one severe fracture of C2–C6."""
    from model_training.phantom import generate_study

    config = config or demo_config()
    for s in range(seed, seed + tries):
        study = generate_study(s, config)
        f = study.fractures
        if len(f) == 1 and f[0].severity == "severe" and 2 <= f[0].vertebra <= 6:
            return study
    raise RuntimeError("no suitable demo study in the seed range")


def truth_of(study) -> dict:
    s = study.summary()
    return {
        "study_instance_uid": study.study_uid,
        "series_instance_uid": study.series_uid,
        "patient_id": study.patient_id,
        "seed": study.seed,
        "fractured": {name: bool(f) for name, f in zip(NAMES, study.fractured)},
        "patient_overall": bool(study.patient_overall),
        "fractures": s["fractures"],
        "slices": int(study.hu.shape[0]),
        "disclaimer": DISCLAIMER,
    }


def write_demo(out_dir: Path, seed: int = DEMO_SEED) -> tuple[Path, Path]:
    from model_training.phantom.dicom_writer import write_ct_series

    study = pick_study(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    zip_path, truth_path = out_dir / DEMO_STUDY, out_dir / DEMO_TRUTH
    with tempfile.TemporaryDirectory() as tmp:
        files = write_ct_series(
            Path(tmp) / "series",
            study.hu,
            study.affine,
            study_uid=study.study_uid,
            series_uid=study.series_uid,
            patient_id=study.patient_id,
            slice_thickness_mm=study.acquisition.slice_thickness_mm,
            description="cspine demo phantom (synthetic)",
            compress=True,
        )
        partial = zip_path.with_suffix(".tmp")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            for f in sorted(files):
                zf.write(f, f"demo-study/{f.name}")
        partial.replace(zip_path)
    truth_path.write_text(json.dumps(truth_of(study), indent=2) + "\n", encoding="utf-8")
    return zip_path, truth_path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=assets_dir() / "demo")
    p.add_argument("--seed", type=int, default=DEMO_SEED)
    args = p.parse_args(argv)
    zip_path, truth_path = write_demo(args.out, args.seed)
    truth = json.loads(truth_path.read_text())
    broken = [n for n, f in truth["fractured"].items() if f]
    print(f"{zip_path} ({zip_path.stat().st_size / 1e6:.1f} MB): fracture of {', '.join(broken)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
