"""The two-stage bundle: export the stage-2 classifier into a bundle, calibrate it and choose the
thresholds on validation phantoms, and evaluate the bundle end to end — as the app runs it.

    cspine-evaluate stages export   --classifier RUN/best.keras --bundle BUNDLE
    cspine-evaluate stages calibrate --bundle BUNDLE --studies 80
    cspine-evaluate stages test     --bundle BUNDLE --studies 200 --out OUT [--docs docs]

``export`` writes ``classifier.onnx`` (fp32, checked against Keras) and ``classifier.int8.onnx``
when the int8 model passes the accuracy gate (vertebra AUC drop ≤ 0.005 on held-out phantoms),
and the card's ``stage2`` section. ``calibrate`` runs the bundle through
:func:`cspine_desktop.analysis.pipeline.analyze` (both stages, the backend ``auto`` picks) on
validation phantoms, fits the Platt calibration of the vertebra scores and chooses the
thresholds for sensitivity ≥ 0.90 (:func:`model_training.model.scoring.choose_thresholds`).
``test`` runs it on phantom studies of a seed never used before and writes the metrics, the
report and the card's ``metrics``. Phantom seeds: :mod:`model_training.datasets.crops_stream`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from cspine_desktop.analysis.metrics import confusion_matrix, dice_counts, roc_auc
from cspine_desktop.analysis.stage2 import calibrate, top_k_score
from cspine_desktop.imaging.crops import CropConfig
from cspine_desktop.vertebrae import N_CLASSES

from .datasets.crops_stream import TEST_SEED0, VAL_SEED0, StreamConfig, evaluation_planes

log = logging.getLogger("cspine.stages")

GATE_SEED0 = 41_000_000  # int8 gate studies
QUANT_SEED0 = 42_000_000  # int8 calibration studies
GATE_MAX_DROP = 0.005


# --------------------------------------------------------------------------- export
def _reload_as_image_input(path: Path, cfg: dict[str, Any]) -> Any:
    """The trained classifier rebuilt with its input named ``image`` (the ONNX contract)."""
    import keras

    from .model.classifier import ClassifierConfig, build_classifier

    trained = keras.models.load_model(str(path), compile=False)
    ccfg = ClassifierConfig.from_dict({**cfg, "encoder_weights": None})
    model = build_classifier(ccfg)
    model.set_weights(trained.get_weights())
    return model


def _sha256(path: Path) -> str:
    from cspine_desktop.inference.bundle import sha256_of

    return sha256_of(path)


def _plane_inputs(seed0: int, n: int, crop: CropConfig) -> Any:
    return evaluation_planes([seed0 + i for i in range(n)], crop, StreamConfig(), plane_stride=2)


def _vertebra_auc(planes: Any, probs: np.ndarray, top_k: int) -> float:
    from .train_classifier import vertebra_table

    vt = vertebra_table(planes, probs, top_k)
    return roc_auc(vt["label"], vt["score"])


def _onnx_probs(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out = []
    for i in range(0, len(x), 32):
        (p,) = sess.run(["fracture"], {name: x[i : i + 32].astype(np.float32)})
        out.append(p.reshape(-1))
    return np.concatenate(out)


def export(args: argparse.Namespace) -> dict[str, Any]:
    from .deploy.onnx_export import export_onnx
    from .deploy.quantize import quantize_int8

    run = Path(args.classifier).parent
    config = json.loads((run / "config.json").read_text())
    crop = CropConfig.from_dict(config["crops"])
    bundle = Path(args.bundle)
    card_path = bundle / "model_card.json"
    card = json.loads(card_path.read_text())
    model = _reload_as_image_input(Path(args.classifier), config["classifier"])
    fp32 = export_onnx(model, bundle / "classifier.onnx")
    gate_planes = _plane_inputs(GATE_SEED0, args.gate_studies, crop)
    x = gate_planes.x.astype(np.float32)
    ref = np.asarray(model.predict(x, batch_size=32, verbose=0)["fracture"]).reshape(-1)
    p32 = _onnx_probs(fp32, x)
    diff = float(np.abs(ref - p32).max())
    log.info("classifier.onnx: max |Keras − ONNX| %.2e over %d planes", diff, len(x))
    if diff > 1e-3:
        raise RuntimeError(f"ONNX export differs from Keras by {diff}")
    files = {k: v for k, v in card["files"].items() if int(v.get("stage", 1)) != 2}
    files["classifier.onnx"] = {
        "format": "onnx",
        "precision": "fp32",
        "sha256": _sha256(fp32),
        "stage": 2,
        "max_abs_diff_vs_keras": diff,
    }
    gate: dict[str, Any] = {"studies": args.gate_studies, "planes": len(x), "seed": GATE_SEED0}
    if not args.no_int8:
        quant = _plane_inputs(QUANT_SEED0, args.quant_studies, crop)
        pick = np.random.default_rng(0).permutation(len(quant.x))[: args.quant_planes]
        i8 = quantize_int8(
            fp32,
            bundle / "classifier.int8.onnx",
            (quant.x[i : i + 1].astype(np.float32) for i in pick),
        )
        p8 = _onnx_probs(i8, x)
        a32 = _vertebra_auc(gate_planes, p32, args.top_k)
        a8 = _vertebra_auc(gate_planes, p8, args.top_k)
        pl32 = roc_auc(gate_planes.y.astype(bool), p32)
        pl8 = roc_auc(gate_planes.y.astype(bool), p8)
        gate.update(
            vertebra_auc_fp32=a32,
            vertebra_auc_int8=a8,
            plane_auc_fp32=pl32,
            plane_auc_int8=pl8,
            max_drop=GATE_MAX_DROP,
        )
        ok = (a32 - a8) <= GATE_MAX_DROP + 1e-9 and (pl32 - pl8) <= GATE_MAX_DROP + 1e-9
        gate["passed"] = bool(ok)
        log.info("int8 gate: %s", gate)
        if ok:
            files["classifier.int8.onnx"] = {
                "format": "onnx",
                "precision": "int8",
                "sha256": _sha256(i8),
                "stage": 2,
                "accuracy_gate": gate,
            }
        else:
            os.unlink(i8)
    history = (
        json.loads((run / "history.json").read_text()) if (run / "history.json").is_file() else []
    )
    card["files"] = files
    card["stage2"] = {
        "architecture": {
            "family": "DenseNet121 encoder, plane classifier + localisation map",
            **config["classifier"],
            "parameters": int(model.count_params()),
        },
        "crops": crop.to_dict(),
        "top_k": args.top_k,
        "plane_stride": 2,
        "calibration": card.get("stage2", {}).get("calibration", {"a": 1.0, "b": 0.0}),
        "training": {
            "data": "a stream of fresh synthetic phantom studies (no study seen twice)",
            "stream": config.get("stream"),
            "seeds": config.get("seeds"),
            "epochs": len(history),
            "history": history,
        },
        "int8_gate": gate,
    }
    _write(card_path, card)
    return card


# --------------------------------------------------------------------------- run the bundle
def _write(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_plain) + "\n")
    os.replace(tmp, path)


def _plain(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def run_bundle(
    bundle_dir: Path, seeds: list[int], phantom: Any = None
) -> tuple[list[Any], np.ndarray]:
    """Every study through ``analyze`` with the bundle (``auto`` backend): a StudyOutcome each,
    and the segmentation's pixel confusion matrix (every second voxel).
    ``confounders['_raw']`` keeps the vertebra probabilities as the card's calibration gave
    them (the raw top-k scores when that calibration is the identity)."""
    from cspine_desktop.analysis.pipeline import analyze
    from cspine_desktop.inference import load_bundle, open_engine

    from .model.predict import StudyOutcome
    from .phantom.config import PhantomConfig
    from .phantom.study import generate_study

    bundle = load_bundle(bundle_dir)
    engine = open_engine(bundle, "auto", None, measure=False)
    out = []
    cm = np.zeros((N_CLASSES, N_CLASSES), np.int64)
    t0 = time.perf_counter()
    for n, seed in enumerate(seeds, start=1):
        st = generate_study(seed, phantom or PhantomConfig())
        vol = st.to_volume()
        truth = st.in_volume_order(st.labels)
        res = analyze(vol, engine, bundle.card, explain=False)
        present = np.array([v.present for v in res.result.vertebrae])
        prob = np.array([v.probability or 0.0 for v in res.result.vertebrae], np.float64)
        counts = dice_counts(res.labels, truth)
        with np.errstate(invalid="ignore", divide="ignore"):
            dice = np.where(counts[:, 1] > 0, counts[:, 0] / counts[:, 1], np.nan)
        cm += confusion_matrix(truth[::2, ::2, ::2], res.labels[::2, ::2, ::2], N_CLASSES)
        summary = st.summary()
        out.append(
            StudyOutcome(
                study_uid=st.study_uid,
                truth=np.asarray(st.fractured, bool),
                patient_truth=bool(st.patient_overall),
                probability=np.where(present, prob, 0.0),
                present=present,
                patient_probability=float(res.result.patient_overall.probability),
                dice=dice,
                dice_counts=counts,
                fractures=[f.to_dict() for f in st.fractures],
                confounders={
                    **summary["confounders"],
                    "_raw": np.where(present, prob, 0.0).tolist(),
                    "_status": res.result.patient_overall.status
                    if hasattr(res.result.patient_overall, "status")
                    else "assessed",
                    "_coverage": st.acquisition.extras.get("coverage", "neck"),
                },
            )
        )
        if n % 10 == 0:
            log.info(
                "%d/%d studies (%.1f s per study)", n, len(seeds), (time.perf_counter() - t0) / n
            )
    engine.close()
    return out, cm


def truth_mask_outcomes(bundle_dir: Path, seeds: list[int], workers: int = 1) -> list[Any]:
    """Stage 2 alone on phantom studies of the phantom's default distribution, its crops cut
    around the TRUE vertebra masks (so segmentation errors play no part), scored by the
    bundle's classifier exactly as the app scores (int8 on the CPU when shipped, every
    ``plane_stride``-th plane, top-k, the card's calibration). Dice is not measured here."""
    from cspine_desktop.analysis.stage2 import Stage2Config
    from cspine_desktop.inference import load_bundle, open_engine

    from .model.predict import StudyOutcome
    from .phantom.study import generate_study

    bundle = load_bundle(bundle_dir)
    # stage 2 rides on the engine when the bundle has one (not part of the Engine protocol)
    clf = getattr(open_engine(bundle, "auto", None, measure=False), "classifier", None)
    if clf is None:
        raise ValueError(f"{bundle_dir} has no stage-2 classifier to test")
    cfg = Stage2Config.from_card(bundle.card["stage2"])
    stream = StreamConfig(phantom_defaults=True)
    out = []
    t0 = time.perf_counter()
    for n, seed in enumerate(seeds, start=1):
        st = generate_study(seed, stream.phantom_config())
        planes = study_planes_eval(seed, cfg, stream, st)
        raw = np.zeros(7)
        present = np.zeros(7, bool)
        for level in range(1, 8):
            sel = planes.vertebra == level
            if not sel.any():
                continue
            probs = []
            x = planes.x[sel].astype(np.float32)
            for i in range(0, len(x), 16):
                probs.append(np.asarray(clf.predict(x[i : i + 16])["fracture"]).reshape(-1))
            raw[level - 1] = top_k_score(np.concatenate(probs), cfg.top_k)
            present[level - 1] = True
        prob = np.where(present, calibrate(raw, cfg.calibration), 0.0)
        out.append(
            StudyOutcome(
                study_uid=st.study_uid,
                truth=np.asarray(st.fractured, bool),
                patient_truth=bool(st.patient_overall),
                probability=prob,
                present=present,
                patient_probability=float(prob[present].max()) if present.any() else 0.0,
                dice=np.full(7, np.nan),
                dice_counts=np.zeros((7, 2), np.int64),
                fractures=[f.to_dict() for f in st.fractures],
                confounders={**st.summary()["confounders"], "_raw": raw.tolist()},
            )
        )
        if n % 20 == 0:
            per = (time.perf_counter() - t0) / n
            log.info("%d/%d studies (%.1f s per study)", n, len(seeds), per)
    return out


def study_planes_eval(seed: int, cfg: Any, stream: StreamConfig, study: Any) -> Any:
    from .datasets.crops_stream import study_planes

    return study_planes(
        seed, cfg.crops, stream, train=False, plane_stride=cfg.plane_stride, study=study
    )


def fit_platt(raw: np.ndarray, y: np.ndarray, iters: int = 200) -> tuple[float, float]:
    """Platt scaling p = σ(a·logit(raw) + b): Newton steps with backtracking on the log loss
    plus a small ridge (finite on separable data; scores clipped to [1e-4, 1 − 1e-4])."""
    r = np.clip(np.asarray(raw, np.float64), 1e-4, 1 - 1e-4)
    x = np.log(r / (1 - r))
    y = np.asarray(y, np.float64)
    lam = 1e-2 * max(len(y), 1) ** 0.5

    def loss(w: np.ndarray) -> float:
        z = w[0] * x + w[1]
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * lam * float(w @ w))

    w = np.array([1.0, 0.0])
    f = loss(w)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(w[0] * x + w[1], -50, 50)))
        g = np.array([np.sum((p - y) * x), np.sum(p - y)]) + lam * w
        s = p * (1 - p)
        h = np.array([[np.sum(s * x * x), np.sum(s * x)], [np.sum(s * x), np.sum(s)]])
        h += lam * np.eye(2)
        step = np.linalg.solve(h, g)
        t = 1.0
        while t > 1e-6 and loss(w - t * step) > f - 1e-4 * t * float(g @ step):
            t *= 0.5
        w_new = w - t * step
        f_new = loss(w_new)
        if abs(f - f_new) < 1e-10:
            w, f = w_new, f_new
            break
        w, f = w_new, f_new
    return float(w[0]), float(w[1])


def calibrate_bundle(args: argparse.Namespace) -> dict[str, Any]:
    from .model.scoring import choose_thresholds, compute_metrics

    bundle = Path(args.bundle)
    card_path = bundle / "model_card.json"
    card = json.loads(card_path.read_text())
    card["stage2"]["calibration"] = {"a": 1.0, "b": 0.0}  # identity: the run gives raw scores
    _write(card_path, card)
    seeds = [VAL_SEED0 + 1000 + i for i in range(args.studies)]  # not the training-time val set
    outs = (
        truth_mask_outcomes(bundle, seeds)
        if args.masks == "truth"
        else run_bundle(bundle, seeds)[0]
    )
    raw = np.array([o.confounders["_raw"] for o in outs])
    if args.save:
        np.savez(
            args.save,
            raw=raw,
            present=np.array([o.present for o in outs]),
            truth=np.array([o.truth for o in outs]),
        )
    present = np.array([o.present for o in outs])
    truth = np.array([o.truth for o in outs])
    a, b = fit_platt(raw[present], truth[present])
    log.info("Platt calibration on %d vertebrae: a=%.4f b=%.4f", int(present.sum()), a, b)
    for o, r in zip(outs, raw):
        cal = np.where(o.present, calibrate(r, (a, b)), 0.0)
        o.probability = cal
        o.patient_probability = float(cal[o.present].max()) if o.present.any() else 0.0
    thresholds = choose_thresholds(outs, args.min_sensitivity)
    val = compute_metrics(outs, thresholds, n_boot=200, seed=0)
    card["stage2"]["calibration"] = {
        "a": a,
        "b": b,
        "method": "Platt scaling of logit(top-k plane score) on validation vertebrae",
        "n_vertebrae": int(present.sum()),
        "seeds": [seeds[0], seeds[-1]],
    }
    card["thresholds"] = thresholds
    metrics = dict(card.get("metrics") or {})
    metrics["validation"] = {k: val[k] for k in ("n_studies", "patient", "vertebra_pooled")}
    metrics["operating_point"] = {
        "min_sensitivity": args.min_sensitivity,
        "chosen_on": f"validation phantoms (seeds {seeds[0]}–{seeds[-1]}), stage 2 on "
        + ("the true vertebra masks" if args.masks == "truth" else "stage 1's masks"),
    }
    card["metrics"] = json.loads(json.dumps(metrics, default=_plain))
    _write(card_path, card)
    log.info("thresholds: %s; validation patient %s", thresholds, val["patient"])
    return card


def test_bundle(args: argparse.Namespace) -> dict[str, Any]:
    from .model.report import card_metrics, write_outputs
    from .model.scoring import compute_metrics

    bundle = Path(args.bundle)
    card_path = bundle / "model_card.json"
    card = json.loads(card_path.read_text())
    seeds = [TEST_SEED0 + i for i in range(args.studies)]
    t0 = time.perf_counter()
    thresholds = {k: float(v) for k, v in card["thresholds"].items()}
    outs = truth_mask_outcomes(bundle, seeds)
    metrics = compute_metrics(outs, thresholds, n_boot=args.bootstrap, seed=0)
    metrics["masks"] = "stage 2 on the true vertebra masks (segmentation errors excluded)"
    e2e_outs: list[Any] = []
    cm = np.zeros((N_CLASSES, N_CLASSES), np.int64)  # segmentation is scored end to end only
    if args.end_to_end:
        e2e_outs, cm = run_bundle(bundle, seeds[: args.end_to_end])
        e2e = compute_metrics(e2e_outs, thresholds, n_boot=200, seed=0)
        status = [o.confounders.get("_status") for o in e2e_outs]
        metrics["end_to_end"] = {
            "n_studies": len(e2e_outs),
            "what": "both stages through analyze(), the backend auto picks, stage-1 masks",
            "patient": e2e["patient"],
            "vertebra_pooled": e2e["vertebra_pooled"],
            "assessed_share": float(np.mean([x == "assessed" for x in status])),
            "by_coverage": _by_coverage(e2e_outs),
        }
        metrics["dice"] = e2e["dice"]
        metrics["dice_measured_on"] = f"{len(e2e_outs)} studies end to end"
    metrics["validation"] = (card.get("metrics") or {}).get("validation")
    metrics["operating_point"] = (card.get("metrics") or {}).get("operating_point")
    from .evaluate import TARGETS

    metrics["targets"] = TARGETS
    metrics["evaluation_time_s"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    context = {
        "run": "two-stage bundle",
        "model": str(bundle.name),
        "test_dir": f"phantom seeds {seeds[0]}–{seeds[-1]} (generated in memory)",
        "train_meta": {},
        "test_meta": {"seed": TEST_SEED0},
        "n_train": None,
        "n_val": (metrics.get("validation") or {}).get("n_studies"),
        "n_test": len(outs),
        "aggregation": "stage 2: calibrated top-k plane score; patient = max over vertebrae",
    }
    write_outputs(out, metrics, outs, cm, e2e_outs or outs, thresholds, context)
    card["metrics"] = {
        **card_metrics(metrics),
        "masks": metrics["masks"],
        "end_to_end": metrics.get("end_to_end"),
    }
    _write(card_path, card)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, default=_plain))
    if args.docs:
        from .model.card_doc import write_card_docs

        write_card_docs(card_path, out, args.docs)
    return metrics


def _by_coverage(outs: list[Any]) -> dict[str, dict[str, float]]:
    """Assessed share and mean Dice per scan coverage (neck / head_neck / trauma)."""
    groups: dict[str, list[Any]] = {}
    for o in outs:
        groups.setdefault(o.confounders.get("_coverage", "neck"), []).append(o)
    return {
        k: {
            "n": len(v),
            "assessed_share": float(
                np.mean([o.confounders.get("_status") == "assessed" for o in v])
            ),
            "mean_dice": float(np.nanmean([np.nanmean(o.dice) for o in v])),
        }
        for k, v in groups.items()
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cspine-evaluate stages", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    e = sub.add_parser("export")
    e.add_argument("--classifier", required=True, help="RUN/best.keras of cspine-train-classifier")
    e.add_argument("--bundle", required=True)
    e.add_argument("--top-k", type=int, default=2)
    e.add_argument("--gate-studies", type=int, default=16)
    e.add_argument("--quant-studies", type=int, default=6)
    e.add_argument("--quant-planes", type=int, default=200)
    e.add_argument("--no-int8", action="store_true")
    c = sub.add_parser("calibrate")
    c.add_argument("--bundle", required=True)
    c.add_argument("--studies", type=int, default=80)
    c.add_argument("--min-sensitivity", type=float, default=0.90)
    c.add_argument("--masks", choices=["truth", "stage1"], default="truth")
    c.add_argument("--save", help="write the raw validation scores here (.npz)")
    t = sub.add_parser("test")
    t.add_argument("--bundle", required=True)
    t.add_argument("--studies", type=int, default=200)
    t.add_argument("--out", required=True)
    t.add_argument("--docs")
    t.add_argument("--bootstrap", type=int, default=1000)
    t.add_argument("--end-to-end", type=int, default=0, help="also run N studies end to end")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    step = {"export": export, "calibrate": calibrate_bundle, "test": test_bundle}[args.step]
    step(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
