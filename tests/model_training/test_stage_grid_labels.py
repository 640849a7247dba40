"""``cspine-evaluate stages grid`` and ``stages count``: stage 1's raw grid labels saved once,
and the level count and checks of the code as it is judged on them."""

from __future__ import annotations

import json
import shutil

import numpy as np

from cspine_desktop.inference import demo_model_dir
from model_training.stages import main as stages_main
from model_training.stages.grid_labels import count_cache, count_study
from tests.factories.phantoms import c2_named_c1

SEED = 96000157  # a default-pose neck of the benchmark sets: the demo model labels it right


def test_grid_and_count_say_what_is_wrong_with_their_input(tmp_path, capsys):
    bundle = str(demo_model_dir())
    base = ["grid", "--bundle", bundle, "--out", str(tmp_path / "g")]
    assert stages_main([*base, "--seeds", "96000100"]) == 2
    assert "--seeds is FIRST:COUNT" in capsys.readouterr().err
    assert stages_main([*base, "--seeds", "5:0"]) == 2
    assert "a count ≥ 1" in capsys.readouterr().err
    assert stages_main([*base, "--seeds", "5:1", "--pose", "upside-down"]) == 2
    assert "--pose is one of askew, default, leaning" in capsys.readouterr().err
    assert stages_main(["count", "--cache", str(tmp_path)]) == 2
    assert "holds no studies" in capsys.readouterr().err


def test_stage_1_saved_once_then_counted_as_the_pipeline_counts(tmp_path, capsys):
    """The demo model's stage 1 on one phantom study, saved; run again, nothing is redone. The
    count finds every level assessed and on its level. The same study with stage 1's labels
    swapped for the true ones named one level too low (C2 labelled C1, …): no level assessed
    under another's name; for the true labels themselves nearly every voxel at its level."""
    cache = tmp_path / "grid"
    args = ["grid", "--bundle", str(demo_model_dir()), "--seeds", f"{SEED}:1", "--out", str(cache)]
    assert stages_main(args) == 0
    assert "stage 1 run on 1 studies" in capsys.readouterr().out
    assert stages_main(args) == 0
    assert "stage 1 run on 0 studies (1 already in" in capsys.readouterr().out

    out = tmp_path / "count.json"
    assert stages_main(["count", "--cache", str(cache), "--out", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    total = report["total"]
    assert total["studies"] == 1 and total["all_assessed"] == 1 and total["levels_assessed"] == 7
    assert total["off_level"] == [] and total["misnamed"] == []
    assert 0.7 < total["labelled_voxels_at_true_level"] < 1.0
    assert report["studies"][0]["seed"] == SEED
    assert "1/1 studies with every level assessed" in capsys.readouterr().out

    with np.load(cache / f"{SEED}.npz") as d:
        saved = dict(d)
    for name, raw in (
        ("shifted", c2_named_c1(saved["truth"], "lost")),
        ("truth", saved["truth"]),
    ):
        other = tmp_path / name
        other.mkdir()
        np.savez_compressed(other / f"{SEED}.npz", **{**saved, "raw": raw})
        row = count_study(other / f"{SEED}.npz")
        if name == "shifted":
            assert not row["all_assessed"] and row["first_reason"]
            assert row["off_level"] == [] and row["misnamed"] == []
        else:
            assert row["all_assessed"] and row["at_true_level"][0] > 0.98 * row["at_true_level"][1]
    shutil.copy(cache / f"{SEED}.npz", tmp_path / "shifted" / "1.npz")
    assert count_cache(tmp_path / "shifted")["total"]["studies"] == 2


def test_count_with_the_bundle_reads_a_leaning_neck_again_as_analyze_does(tmp_path, capsys):
    """Phantom study 96000132 leans 14.6° against the slices: counted on stage 1's saved labels
    alone it is left indeterminate; given the bundle that made them, it is read again upright,
    every level assessed, none under another's name, and the report says so."""
    cache, bundle = tmp_path / "grid", str(demo_model_dir())
    args = ["grid", "--bundle", bundle, "--seeds", "96000132:1", "--out", str(cache)]
    assert stages_main(args) == 0
    alone = count_cache(cache)["total"]
    assert alone["all_assessed"] == 0 and alone["read_again"] == 0
    out = tmp_path / "count.json"
    assert stages_main(["count", "--cache", str(cache), "--bundle", bundle, "--out", str(out)]) == 0
    total = json.loads(out.read_text(encoding="utf-8"))["total"]
    assert total["all_assessed"] == 1 and total["read_again"] == 1
    assert total["off_level"] == [] and total["misnamed"] == []
    assert "read again 1" in capsys.readouterr().out
