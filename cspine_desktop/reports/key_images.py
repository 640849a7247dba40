"""Key images: annotated copies of source slices, as RGB arrays and PNG files.

Each image is a bone-window slice with the vertebra labels (fill alpha 0.4 + outline), the
fracture heat-map, and a black margin underneath holding a title, a legend and the
"not for diagnostic use" disclaimer. The source pixels are copied, never altered.

Images are ``KEY_IMAGE_WIDTH`` pixels wide; the slice keeps its physical aspect (from the
pixel spacing) inside a ``KEY_IMAGE_WIDTH`` × ``MAX_PANEL_HEIGHT`` box, centred on black.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..analysis import wording
from ..imaging.windows import BONE, apply_window
from ..vertebrae import FRACTURE_RGB, VERTEBRAE, by_name
from ._common import (
    OutcomeLike,
    check_outcome,
    label_counts,
    slice_label_counts,
    write_bytes_atomic,
)

KEY_IMAGE_WIDTH = 512
MAX_PANEL_HEIGHT = 768
MARGIN_HEIGHT = 104
LABEL_ALPHA = 0.4
HEAT_ALPHA = 0.6
HEAT_FLOOR = 0.2  # heat-map values below this are not drawn
FALLBACK_COUNT = 2  # key images when nothing is judged fractured: the most suspicious ones

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SCALE, _THICK, _LINE = 0.4, 1, 15
_WHITE, _AMBER = (255, 255, 255), (255, 191, 0)
_LPS_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))


def _ascii(text: str) -> str:
    """Hershey fonts draw ASCII only."""
    text = text.replace("–", "-").replace("—", "-").replace("≥", ">=")
    return text.encode("ascii", "replace").decode("ascii")


def _letter(direction: np.ndarray) -> str:
    """The patient direction (LPS letters) a vector points to most."""
    axis = int(np.argmax(np.abs(direction)))
    return _LPS_LETTERS[axis][int(direction[axis] > 0)]


def choose_key_vertebrae(outcome: OutcomeLike) -> list[str]:
    """Names of the vertebrae that get a key image: all judged fractured (most probable
    first), else the ``FALLBACK_COUNT`` present vertebrae with the highest probability."""
    present = [v for v in outcome.result.vertebrae if v.present and v.probability is not None]
    present.sort(key=lambda v: -float(v.probability or 0.0))
    fractured = [v.name for v in present if v.fractured]
    return fractured or [v.name for v in present[:FALLBACK_COUNT]]


def key_slice(outcome: OutcomeLike, name: str) -> int | None:
    """Source slice index for ``name``'s key image: the verdict's peak slice, else the slice
    where the heat-map peaks inside the vertebra, else the slice with most of the vertebra."""
    nz = outcome.volume.hu.shape[0]
    verdict = outcome.result.vertebra(name)
    if verdict.peak_slice is not None and 0 <= verdict.peak_slice < nz:
        return int(verdict.peak_slice)
    label, labels = by_name(name).label, np.asarray(outcome.labels)
    area = slice_label_counts(labels)[:, label]
    if not area.any():
        return None
    if outcome.heatmap is not None:
        zs = np.nonzero(area)[0]
        peaks = np.array([outcome.heatmap[z][labels[z] == label].max() for z in zs])
        if peaks.max() > 0:
            return int(zs[np.argmax(peaks)])
    return int(np.argmax(area))


def _panel_size(shape_hw: tuple[int, int], spacing_hw: tuple[float, float]) -> tuple[int, int]:
    h_mm, w_mm = shape_hw[0] * spacing_hw[0], shape_hw[1] * spacing_hw[1]
    scale = min(KEY_IMAGE_WIDTH / w_mm, MAX_PANEL_HEIGHT / h_mm)
    return max(1, round(h_mm * scale)), max(1, round(w_mm * scale))


def _overlay(grey: np.ndarray, labels: np.ndarray, heat: np.ndarray | None, size_hw) -> np.ndarray:
    """Bone-window RGB panel of ``size_hw`` with label fill + outline and heat-map."""
    h, w = size_hw
    g = cv2.resize(grey, (w, h), interpolation=cv2.INTER_LINEAR)
    rgb = np.repeat((g * 255.0 + 0.5).astype(np.uint8)[..., None], 3, axis=2)
    lab = cv2.resize(labels.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    out = rgb.astype(np.float32)
    for v in VERTEBRAE:
        mask = lab == v.label
        if mask.any():
            out[mask] = (1 - LABEL_ALPHA) * out[mask] + LABEL_ALPHA * np.array(v.rgb, np.float32)
    if heat is not None:
        hm = cv2.resize(heat.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        a = np.where(hm >= HEAT_FLOOR, HEAT_ALPHA * np.clip(hm, 0, 1), 0.0)[..., None]
        out = (1 - a) * out + a * np.array(FRACTURE_RGB, np.float32)
    out8 = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    for v in VERTEBRAE:
        mask = (lab == v.label).astype(np.uint8)
        if mask.any():
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out8, contours, -1, v.rgb, 2 if min(h, w) >= 256 else 1)
    return out8


def _wrap(text: str, width_px: int) -> list[str]:
    lines, line = [], ""
    for word in _ascii(text).split():
        trial = f"{line} {word}".strip()
        if cv2.getTextSize(trial, _FONT, _SCALE, _THICK)[0][0] <= width_px or not line:
            line = trial
        else:
            lines.append(line)
            line = word
    return [*lines, line] if line else lines


def _compose(
    panel: np.ndarray,
    title: str,
    legend: list[tuple[str, tuple[int, int, int]]],
    disclaimer: str,
    corner_letters: tuple[str, str],
) -> np.ndarray:
    """Centre ``panel`` in a KEY_IMAGE_WIDTH canvas and add the margin text."""
    ph, pw = panel.shape[:2]
    img = np.zeros((ph + MARGIN_HEIGHT, KEY_IMAGE_WIDTH, 3), np.uint8)
    x0 = (KEY_IMAGE_WIDTH - pw) // 2
    img[:ph, x0 : x0 + pw] = panel
    left, top = corner_letters
    cv2.putText(img, left, (x0 + 4, ph // 2), _FONT, 0.5, _WHITE, 1, cv2.LINE_AA)
    cv2.putText(img, top, (x0 + pw // 2, 16), _FONT, 0.5, _WHITE, 1, cv2.LINE_AA)
    y = ph + _LINE
    cv2.putText(img, _ascii(title)[:90], (6, y), _FONT, _SCALE, _WHITE, _THICK, cv2.LINE_AA)
    y += _LINE + 2
    x = 6
    for text, colour in legend:
        cv2.rectangle(img, (x, y - 10), (x + 12, y + 1), colour, -1)
        x += 16
        cv2.putText(img, _ascii(text), (x, y), _FONT, _SCALE, _WHITE, _THICK, cv2.LINE_AA)
        x += cv2.getTextSize(_ascii(text), _FONT, _SCALE, _THICK)[0][0] + 12
    for line in _wrap(disclaimer, KEY_IMAGE_WIDTH - 12)[: (MARGIN_HEIGHT - 2 * _LINE - 4) // _LINE]:
        y += _LINE
        cv2.putText(img, line, (6, y), _FONT, _SCALE, _AMBER, _THICK, cv2.LINE_AA)
    return img


def _legend(labels: np.ndarray, heat: np.ndarray | None) -> list[tuple[str, tuple[int, int, int]]]:
    """Legend entries for the labels in ``labels`` (one slice, or the whole [z, y, x] map)."""
    labels = np.asarray(labels)
    found = label_counts(labels if labels.ndim == 3 else labels[None]) > 0  # np.unique sorts
    items = [(v.name, v.rgb) for v in VERTEBRAE if found[v.label]]
    if heat is not None:
        items.append((f"fracture heat-map (>= {HEAT_FLOOR:.1f})", FRACTURE_RGB))
    return items


def render_axial(outcome: OutcomeLike, name: str, z: int | None = None) -> np.ndarray:
    """Key image of vertebra ``name`` at source slice ``z`` (default :func:`key_slice`) as RGB
    uint8 [H, KEY_IMAGE_WIDTH, 3]; rows and columns as stored in the source (radiological)."""
    check_outcome(outcome)
    vol, verdict = outcome.volume, outcome.result.vertebra(name)
    z = key_slice(outcome, name) if z is None else z
    if z is None:
        raise ValueError(f"{name} has no voxels and no peak slice")
    heat = None if outcome.heatmap is None else outcome.heatmap[z]
    grey = apply_window(vol.hu[z], BONE)
    size = _panel_size(vol.hu.shape[1:], (vol.spacing[1], vol.spacing[2]))
    panel = _overlay(grey, outcome.labels[z], heat, size)
    word = wording.vertebra_word(verdict.status, verdict.fractured)
    p = f"{verdict.probability:.2f}" if verdict.probability is not None else "n/a"
    title = f"{name} axial slice {z + 1}/{vol.hu.shape[0]}: fracture probability {p} ({word})"
    a = np.asarray(vol.affine, dtype=np.float64)
    letters = (_letter(-a[:3, 0]), _letter(-a[:3, 1]))
    legend = _legend(outcome.labels[z], heat)
    return _compose(panel, title, legend, outcome.result.disclaimer, letters)


def render_sagittal(outcome: OutcomeLike) -> np.ndarray:
    """Sagittal reformat through the spine (the median labelled column; centre if none), head
    up and anterior left when the geometry allows, labels at that plane and the heat-map's
    maximum across the labelled columns. RGB uint8 [H, KEY_IMAGE_WIDTH, 3]."""
    check_outcome(outcome)
    vol = outcome.volume
    labels = np.asarray(outcome.labels)
    cols = np.nonzero(labels.any(axis=(0, 1)))[0]
    x = int(np.median(cols)) if cols.size else vol.hu.shape[2] // 2
    hu, lab = vol.hu[:, :, x], labels[:, :, x]  # [z, y]
    heat = None
    if outcome.heatmap is not None:
        lo, hi = (int(cols.min()), int(cols.max()) + 1) if cols.size else (x, x + 1)
        heat = np.asarray(outcome.heatmap[:, :, lo:hi]).max(axis=2)
    a = np.asarray(vol.affine, dtype=np.float64)
    row_dir, col_dir = a[:3, 2].copy(), a[:3, 1].copy()  # image rows = slices, columns = y
    if row_dir[2] > 0:  # slice index runs toward the head: flip so the head is up
        hu, lab, row_dir = hu[::-1], lab[::-1], -row_dir
        heat = None if heat is None else heat[::-1]
    if col_dir[1] < 0:  # rows run anterior: flip so anterior is on the left
        hu, lab, col_dir = hu[:, ::-1], lab[:, ::-1], -col_dir
        heat = None if heat is None else heat[:, ::-1]
    size = _panel_size(hu.shape, (vol.spacing[0], vol.spacing[1]))
    panel = _overlay(apply_window(hu, BONE), lab, heat, size)
    title = f"Sagittal at column {x + 1}/{vol.hu.shape[2]}; heat-map = max across the spine"
    letters = (_letter(-col_dir), _letter(-row_dir))
    return _compose(panel, title, _legend(labels, heat), outcome.result.disclaimer, letters)


def render_key_images(outcome: OutcomeLike) -> dict[str, np.ndarray]:
    """{"C<k>": axial key image for each :func:`choose_key_vertebrae`, "sagittal": reformat}
    (the sagittal only when the volume has more than one slice)."""
    images = {}
    for name in choose_key_vertebrae(outcome):
        z = key_slice(outcome, name)
        if z is not None:
            images[name] = render_axial(outcome, name, z)
    if outcome.volume.hu.shape[0] > 1:
        images["sagittal"] = render_sagittal(outcome)
    return images


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 image."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def write_key_images(
    outcome: OutcomeLike,
    out_dir: str | os.PathLike[str],
    stem: str = "cspine",
    images: dict[str, np.ndarray] | None = None,
) -> dict[str, Path]:
    """Write :func:`render_key_images` as ``<stem>_key_C<k>.png`` / ``<stem>_sagittal.png``
    (each atomic); returns {"key_image_C<k>" | "key_image_sagittal": path}."""
    images = render_key_images(outcome) if images is None else images
    out: dict[str, Path] = {}
    for key, rgb in images.items():
        name = f"{stem}_sagittal.png" if key == "sagittal" else f"{stem}_key_{key}.png"
        out[f"key_image_{key}"] = write_bytes_atomic(Path(out_dir) / name, encode_png(rgb))
    return out
