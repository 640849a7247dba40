"""``cspine-evaluate stages levels``: where the app puts each level, against reference labels
of an RSNA-layout folder."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from cspine_desktop.inference import demo_model_dir
from model_training.phantom import PhantomConfig, write_rsna_dataset
from model_training.stages import main as stages_main
from model_training.stages.levels import compare_levels, level_centres, summarise


def _stack(levels: dict[int, tuple[int, int]], nz: int = 40) -> np.ndarray:
    """A label map [z, 4, 4] with level k on slices lo..hi (inclusive)."""
    lab = np.zeros((nz, 4, 4), np.uint8)
    for k, (lo, hi) in levels.items():
        lab[lo : hi + 1] = k
    return lab


def test_level_centres_and_cut_levels():
    lab = _stack({1: (0, 3), 2: (4, 9), 3: (10, 15)}, nz=16)
    centres = level_centres(lab)
    assert centres[1] == (1.5, True)  # touches the first slice
    assert centres[2] == (6.5, False)
    assert centres[3] == (12.5, True)  # touches the last slice


def test_compare_levels_off_by_one_level_and_missing():
    ref = _stack({k: (6 * k, 6 * k + 4) for k in range(1, 7)}, nz=42)
    app = _stack({1: (6, 10), 2: (12, 16), 3: (19, 23)}, nz=42)  # C3 one slice low; no C4–C6
    rows = compare_levels(app, ref, 2.0, dict.fromkeys(["C1", "C2", "C3"], "assessed"))
    by = {r["level"]: r for r in rows}
    assert set(by) == {"C1", "C2", "C3", "C4", "C5", "C6"}
    assert by["C3"]["off_slices"] == 1.0 and by["C3"]["off_mm"] == 2.0 and by["C3"]["lands"]
    assert by["C1"]["off_slices"] == 0.0 and by["C1"]["on_level"]
    assert not by["C4"]["found"] and not by["C4"]["lands"] and not by["C4"]["on_level"]
    assert by["C4"]["status"] == "not_in_view" and not by["C4"]["confident_wrong_level"]

    low = np.where(ref > 0, ref + 1, 0).astype(np.uint8)  # every level named one too low
    rows = compare_levels(low, ref, 2.0, dict.fromkeys(["C2", "C3"], "assessed"))
    by = {r["level"]: r for r in rows}
    assert not by["C1"]["found"] and not by["C1"]["lands"]
    assert by["C2"]["off_slices"] == -6.0 and not by["C2"]["on_level"]
    assert by["C2"]["confident_wrong_level"] and by["C3"]["confident_wrong_level"]
    assert not by["C4"]["confident_wrong_level"]  # wrong, but not assessed
    s = summarise([{"study": "x", "patient_status": "indeterminate", "levels": rows}])
    assert s["on_level"] == 0.0 and s["confident_wrong_levels"] == ["x C2", "x C3"]


def test_levels_command_says_what_is_wrong_with_its_input(tmp_path, capsys):
    bundle = str(demo_model_dir())
    out = str(tmp_path / "out")
    base = ["levels", "--bundle", bundle, "--out", out]
    assert stages_main([*base, "--data", str(tmp_path / "none")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert stages_main([*base, "--data", str(tmp_path), "--label-ids", "1,2"]) == 2
    assert "--label-ids needs 7 values (C1 … C7)" in capsys.readouterr().err


@pytest.mark.slow
def test_levels_command_on_phantom_studies_and_on_labels_one_level_off(tmp_path):
    """The demo model on two phantom studies in the RSNA layout: every level on its own level,
    nearly all within one slice; one of them alone, by its images and a reference file with
    other label values, the same. The same images against reference labels named one level
    too low: no level on its level, and every assessed level counted as a confident wrong one."""
    root = tmp_path / "rsna"
    write_rsna_dataset(root, 2, 424200, PhantomConfig(fracture_prevalence=0.0))
    bundle = str(demo_model_dir())
    out = tmp_path / "right"
    assert stages_main(["levels", "--data", str(root), "--bundle", bundle, "--out", str(out)]) == 0
    report = json.loads((out / "levels.json").read_text(encoding="utf-8"))
    s = report["summary"]
    assert s["studies"] == 2 and s["reference_levels"] >= 12
    assert s["on_level"] == 1.0 and s["lands"] >= 0.85
    assert s["confident_wrong_levels"] == []
    assert "centre within 1 slice of the reference" in (out / "levels.md").read_text("utf-8")

    # one study by its images and a reference with TotalSegmentator's values (C1 50 … C7 44)
    seg = sorted((root / "segmentations").glob("*.nii"))[0]
    img = nib.load(str(seg))
    data = np.asarray(img.dataobj)
    ts = np.where(data > 0, 51 - data, 0).astype(np.uint8)
    ts_path = tmp_path / "ts.nii.gz"
    nib.save(nib.Nifti1Image(ts, img.affine), str(ts_path))
    images = root / "train_images" / seg.name.removesuffix(".nii")
    one = tmp_path / "one"
    args = ["levels", "--image", str(images), "--reference", str(ts_path), "--bundle", bundle]
    ids = "50,49,48,47,46,45,44"
    assert stages_main([*args, "--label-ids", ids, "--out", str(one)]) == 0
    s = json.loads((one / "levels.json").read_text(encoding="utf-8"))["summary"]
    assert s["studies"] == 1 and s["reference_levels"] >= 6 and s["on_level"] == 1.0
    with pytest.raises(SystemExit):
        stages_main(["levels", "--image", str(images), "--bundle", bundle, "--out", str(one)])

    for seg in (root / "segmentations").glob("*.nii"):
        img = nib.load(str(seg))
        data = np.asarray(img.dataobj)
        low = np.where((data > 0) & (data < 7), data + 1, 0).astype(data.dtype)
        nib.save(nib.Nifti1Image(low, img.affine, img.header), str(seg))
    out = tmp_path / "off"
    assert stages_main(["levels", "--data", str(root), "--bundle", bundle, "--out", str(out)]) == 0
    s = json.loads((out / "levels.json").read_text(encoding="utf-8"))["summary"]
    assert s["on_level"] == 0.0 and s["lands"] == 0.0
    assert len(s["confident_wrong_levels"]) == s["assessed"] > 0
