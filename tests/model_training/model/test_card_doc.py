"""The model card page describes stage 2 as the card says: both views, and every epoch of its
training, including the starting point of a run that continued an earlier classifier."""

from __future__ import annotations

from model_training.model.card_doc import _stage2_section

CROPS = {"size": 128, "pixel_mm": 0.5, "plane_mm": 1.0, "context_mm": 1.0, "map_stride": 8}


def _card(crops, history):
    return {
        "stage2": {
            "architecture": {"family": "DenseNet121 crop classifier", "parameters": 7_000_000},
            "crops": crops,
            "top_k": 2,
            "plane_stride": 2,
            "calibration": {"a": 0.7, "b": -2.0, "method": "platt", "n_vertebrae": 420},
            "training": {"data": "streamed phantoms", "epochs": len(history), "history": history},
        }
    }


def test_sagittal_view_and_a_starting_point_without_loss_are_rendered():
    hist = [
        {"run": "+ sagittal", "epoch": 0, "val_vertebra_auc": 0.685, "gap": -0.02},
        {
            "run": "+ sagittal",
            "epoch": 1,
            "lr": 5e-4,
            "loss": 0.64,
            "val_vertebra_auc": 0.71,
            "val_vertebra_auc_sagittal": 0.72,
            "gap": 0.01,
        },
    ]
    text = "\n".join(_stage2_section(_card({**CROPS, "sagittal_half_mm": 12.0}, hist)))
    assert "sagittal planes scored 2 mm apart within 12 mm" in text
    assert "| run | epoch | lr | loss | val vertebra AUC | val sagittal only | gap |" in text
    assert "| + sagittal | 0 | — | — | 0.685 | — | -0.020 |" in text
    assert "| + sagittal | 1 | 0.0005 | 0.640 | 0.710 | 0.720 | +0.010 |" in text


def test_plane_spacing_is_said_as_the_card_has_it():
    old = "\n".join(_stage2_section(_card(CROPS, [])))
    assert "one in 2 scored" in old and "every source slice" not in old
    card = _card(CROPS, [])
    card["stage2"]["plane_step_mm"] = 3.0
    text = "\n".join(_stage2_section(card))
    assert "planes scored every 3 mm" in text and "every source slice is read" in text


def test_axial_only_card_says_nothing_of_a_sagittal_view():
    text = "\n".join(_stage2_section(_card(CROPS, [])))
    assert "sagittal" not in text


def test_int8_gate_is_rendered_with_its_bound_and_old_records_still_render():
    old = {"studies": 16, "planes": 2840, "seed": 41000000, "vertebra_auc_fp32": 0.7583,
           "vertebra_auc_int8": 0.7323, "plane_auc_fp32": 0.7434, "plane_auc_int8": 0.7265,
           "max_drop": 0.005, "passed": False}  # fmt: skip
    card = _card(CROPS, [])
    card["stage2"]["int8_gate"] = old
    text = "\n".join(_stage2_section(card))
    assert "**int8 gate** (16 held-out phantoms, 2840 planes)" in text
    assert "refused, int8 not shipped" in text and "bootstrap" not in text
    card["stage2"]["int8_gate"] = {
        **old, "studies": 60, "within_level_auc_fp32": 0.65, "within_level_auc_int8": 0.649,
        "drop_upper_95": 0.012, "max_drop_upper": 0.02, "passed": True,
    }  # fmt: skip
    text = "\n".join(_stage2_section(card))
    assert "within a level 0.6500 → 0.6490" in text
    assert "95th percentile of the vertebra-AUC drop 0.0120 (allowed 0.02)" in text
    assert "passed, int8 shipped" in text


def test_the_end_to_end_figures_and_the_floor_are_on_the_page():
    """When the thresholds are chosen on stage 1's masks, the page shows what the app gives
    (the studies run end to end) beside the true-mask table, and the floor of the rule."""
    from model_training.model.card_doc import _end_to_end, _thresholds

    def ci(v):
        return {"value": v, "ci95": [v - 0.1, v + 0.1]}

    e2e = {
        "n_studies": 60,
        "what": "both stages through analyze()",
        "patient": {
            "tp": 28,
            "fp": 18,
            "tn": 10,
            "fn": 4,
            "auc": ci(0.69),
            "sensitivity": ci(0.875),
            "specificity": ci(0.357),
        },
        "vertebra_pooled": {
            "auc": ci(0.71),
            "auc_within_level": ci(0.71),
            "sensitivity": ci(0.4),
            "specificity": ci(0.87),
        },
        "assessed_share": 0.983,
    }
    text = "\n".join(_end_to_end({"end_to_end": e2e}))
    assert "## End to end, as the app runs it" in text
    assert (
        "| Patient sensitivity / specificity at the thresholds | "
        "0.875 (0.775–0.975) / 0.357 (0.257–0.457) |" in text
    )
    assert "28/18/10/4" in text
    assert _end_to_end({}) == []
    op = {"min_sensitivity": 0.9, "min_vertebra_sensitivity": 0.4, "chosen_on": "stage 1's masks"}
    lines = "\n".join(
        _thresholds({"metrics": {"operating_point": op}, "thresholds": {"C1": 0.118}})
    )
    assert "at least 0.40 of the fractured vertebrae (stage 1's masks)" in lines
