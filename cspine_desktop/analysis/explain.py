"""Why the model says "fracture": the per-voxel heat-map and class activation maps.

* ``fracture_heatmap``: the model's ``fracture_map`` output (probability that a voxel is
  fractured bone), kept only near the segmented vertebrae — fractures are in bone, so heat in
  soft tissue or air is noise, not explanation.
* ``class_activation_grid``: Grad-CAM of ``fracture_cls`` for the vertebrae judged fractured.
  The Keras backend computes it with gradients. For ONNX/TensorRT there are no gradients; the
  exported model carries an extra ``fracture_cam`` output instead — the classification head's
  dense weights applied at every bottleneck position (a class activation map). For this head
  (global average pooling → dense → sigmoid) Grad-CAM's channel weights are exactly those dense
  weights / (h·w), so both give the same map up to scale. A model without it gives no CAM.

Arrays are [Zg, S, S] on the model grid, values in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..vertebrae import NAMES

NEAR_BONE_MM = 3.0


def fracture_heatmap(
    fracture_map: np.ndarray, labels: np.ndarray, pixel_spacing_mm: float
) -> np.ndarray:
    """``fracture_map`` [Zg, S, S] zeroed farther than NEAR_BONE_MM from any labelled vertebra."""
    r = max(1, round(NEAR_BONE_MM / pixel_spacing_mm))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    heat = np.zeros_like(fracture_map, dtype=np.float32)
    for z in np.nonzero(labels.reshape(labels.shape[0], -1).any(axis=1))[0]:
        near = cv2.dilate((labels[z] > 0).astype(np.uint8), kernel) > 0
        heat[z][near] = fracture_map[z][near]
    return np.clip(heat, 0.0, 1.0)


def class_activation_grid(
    activation: Callable[[np.ndarray, int], np.ndarray],
    labels: np.ndarray,
    fractured: dict[str, bool],
    batch_size: int = 4,
) -> np.ndarray | None:
    """Grad-CAM / CAM for every vertebra judged fractured, over the planes where it lies.

    activation(planes, k) → [N, h, w] ≥ 0 for class k (0-based C1..C7) on those grid planes
    (computed by the engine, or looked up when the main pass kept the CAM output; see
    :func:`stored_activation`). Each map is resized to S×S, normalised to its maximum and
    kept inside the vertebra (dilated); the result is the maximum over vertebrae, or None if
    no vertebra is fractured.
    """
    wanted = [k for k, name in enumerate(NAMES) if fractured.get(name)]
    if not wanted:
        return None
    zg, s = labels.shape[0], labels.shape[1]
    out = np.zeros((zg, s, s), np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    for k in wanted:
        planes = np.nonzero((labels == k + 1).reshape(zg, -1).any(axis=1))[0]
        maps = []
        for i in range(0, len(planes), batch_size):
            chunk = planes[i : i + batch_size]
            maps.append(np.asarray(activation(chunk, k), np.float32))
        if not maps:
            continue
        cams = np.concatenate(maps)
        top = float(cams.max())
        if top <= 0:
            continue
        for z, cam in zip(planes, cams):
            up = cv2.resize(cam / top, (s, s), interpolation=cv2.INTER_LINEAR)
            inside = cv2.dilate((labels[z] == k + 1).astype(np.uint8), kernel) > 0
            out[z] = np.maximum(out[z], np.where(inside, up, 0.0))
    return np.clip(out, 0.0, 1.0)


def stored_activation(cam: np.ndarray) -> Callable[[np.ndarray, int], np.ndarray]:
    """``activation(planes, k)`` reading a [Zg, h, w, 7] CAM kept from the main pass."""
    return lambda planes, k: np.maximum(cam[np.asarray(planes)][..., k], 0.0)
