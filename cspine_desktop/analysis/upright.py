"""A neck that leans against the slices, read a second time on its CT turned upright.

Stage 1 learned necks standing in the axial slices about as a patient lies on the table: 95 %
of the phantom studies it was trained on lean less than 13° front to back. On a neck that leans
more (a tilted gantry, a neck flexed or extended, a stooped patient), its labels of the middle
levels fall apart (C4's pooled Dice 0.51, against 0.88 on the others: docs/training.md, "Necks
leaning against the slices"). The level count, which splits the column at planes, cannot mend
them, and the checks leave the patient indeterminate: rightly, but for a cause that lies in the
pose, not in the spine.

So when the first reading leaves the study or a level indeterminate, the CT on the model grid is
turned about the left–right axis through the labelled column's centre by the column's lean
against the slices (:func:`~cspine_desktop.analysis.levels.column_lean_deg`), and stage 1 reads
it twice: turned fully
upright, and turned to lean ``UPRIGHT_SECOND_DEG`` still (about the slope an upright neck's
column shows in the planes). The two outputs are averaged in the upright frame (a prediction
that holds under a few degrees of turn, not one angle's accident), and the level count, the
clean-up and every check run there, where the vertebrae lie one above another in the planes as
the count expects; there too a boundary 2–3 planes from a vertebral body's top found in the CT
is moved onto it (:func:`~.levels.onto_body_tops`: the upright labels had given the top of C7
to C6 on two phantom necks, with the top found exactly at the true boundary). The reading
replaces the first only when it leaves no study reason and no level indeterminate; its labels
are turned back onto the model grid, and the coverage check is made there (the upright frame
reaches past the scan's ends). Otherwise the first reading stands, with its reasons.

This second reading was first made only for necks leaning more than 8°, where the first fails
for the pose. On an upright neck the turn is a few degrees, and the two readings averaged still
mend what one reading left unsure: on the third unseen phantom set (docs/benchmarks.md, "A
second reading for every unsure first reading") it made three of four upright studies the
first reading had left indeterminate wholly assessed, each level on its own vertebra. So every
unsure first reading is read again; ``LEANING_DEG`` only decides whether the warning speaks of
a leaning neck.

The upright frame is padded with the scan's own first and last planes, repeated: stage 1's input
holds planes up to 20 mm away, clamped to the scan's ends in training; planes of air added
instead took C1's Dice from 0.89 to 0.00 on a study it was tried on.

Pure numpy/OpenCV; arrays are [Zg, S, S] on the model grid (z toward the feet, y toward the back).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from ..imaging.preprocess import PreparedVolume, PreprocessConfig
from ..progress import CancelToken
from ..vertebrae import NAMES
from .anchors import find_anchors
from .levels import column_lean_deg, onto_body_tops
from .model_pass import Predictor, run_model
from .plausibility import (
    ASSESSED,
    NOT_IN_VIEW,
    PARTLY_IN_VIEW,
    SpineCheck,
    check_cleaned,
    with_scan_edges,
)
from .postprocess import CleanLabels, clean_labels

LEANING_DEG = 8.0  # a column leaning more is "a neck leaning against the slices" in the warning
UPRIGHT_SECOND_DEG = 5.0  # the second turned reading leaves the column leaning this much


@dataclass(frozen=True)
class Turn:
    """A turn of model-grid volumes [Zg, S, S] about the left–right axis by ``deg`` (the
    column's lean, :func:`~.levels.column_lean_deg`: turning by it makes the column upright)
    through plane ``centre_z`` and row ``centre_y``, in millimetres (planes ``step_mm`` apart,
    rows ``pixel_mm``). The turned frame has ``pad`` more planes at each end."""

    deg: float
    centre_z: float
    centre_y: float
    pad: int
    step_mm: float
    pixel_mm: float

    @classmethod
    def upright(
        cls, labels: np.ndarray, lean_deg: float, step_mm: float, pixel_mm: float, spare_deg: float
    ) -> Turn:
        """The turn that stands the labelled column upright, padded for turns up to
        ``spare_deg`` more."""
        held = np.asarray(labels) > 0
        zs = np.flatnonzero(held.reshape(held.shape[0], -1).any(axis=1))
        rows = np.nonzero(held.any(axis=2))[1]
        widest = abs(lean_deg) + abs(spare_deg)
        half = held.shape[1] * pixel_mm * abs(math.sin(math.radians(min(widest, 90.0)))) / 2
        return cls(
            deg=float(lean_deg),
            centre_z=float(zs.mean()),
            centre_y=float(rows.mean()),
            pad=math.ceil(half / step_mm) + 2,
            step_mm=step_mm,
            pixel_mm=pixel_mm,
        )

    def _matrix(self, deg: float) -> np.ndarray:
        """The inverse map (turned → source, OpenCV's x = row, y = plane, both padded) of a
        turn by ``deg``, in millimetres."""
        a = math.radians(deg)
        c, s = math.cos(a), math.sin(a)
        r = self.step_mm / self.pixel_mm
        m = np.array([[c, s * r, 0.0], [-s / r, c, 0.0]])
        centre = np.array([self.centre_y, self.centre_z + self.pad])
        m[:, 2] = centre - m[:, :2] @ centre
        return m

    def _warp(self, vol: np.ndarray, deg: float, nearest: bool, repeat_edges: bool) -> np.ndarray:
        m = self._matrix(deg)
        flags = (cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR) | cv2.WARP_INVERSE_MAP
        border = cv2.BORDER_REPLICATE if repeat_edges else cv2.BORDER_CONSTANT
        out = np.empty_like(vol)
        size = (vol.shape[1], vol.shape[0])
        for x in range(vol.shape[2]):
            out[:, :, x] = cv2.warpAffine(
                np.ascontiguousarray(vol[:, :, x]), m, size, flags=flags, borderMode=border
            )
        return out

    def to_upright(
        self, vol: np.ndarray, extra_deg: float = 0.0, *, labels: bool = False
    ) -> np.ndarray:
        """A model-grid volume turned upright (and ``extra_deg`` less: the column left leaning
        that much its own way). The CT (linear) gets its first and last planes repeated beyond
        the scan; ``labels`` (nearest) get background there."""
        pad = ((self.pad, self.pad), (0, 0), (0, 0))
        deg = _leaning_less(self.deg, extra_deg) if extra_deg else self.deg
        if labels:
            return self._warp(np.pad(np.asarray(vol, np.uint8), pad), deg, True, False)
        padded = np.pad(np.asarray(vol, np.float32), pad, "edge")
        return self._warp(padded, deg, nearest=False, repeat_edges=True)

    def into_upright(self, probabilities: np.ndarray, extra_deg: float) -> np.ndarray:
        """Class probabilities [Zt, S, S, C] read on :meth:`to_upright` ``(hu, extra_deg)``
        turned into the fully upright frame (outside the turned planes: background)."""
        deg = math.copysign(extra_deg, self.deg)
        out = np.empty(probabilities.shape, np.float32)
        for k in range(probabilities.shape[-1]):
            out[..., k] = self._warp(
                probabilities[..., k].astype(np.float32), deg, nearest=False, repeat_edges=False
            )
        out[..., 0] += 1.0 - out.sum(axis=-1)  # what came from outside: background
        return out

    def labels_back(self, labels: np.ndarray) -> np.ndarray:
        """Labels in the upright frame turned back onto the model grid."""
        back = self._warp(np.asarray(labels, np.uint8), -self.deg, nearest=True, repeat_edges=False)
        return back[self.pad : back.shape[0] - self.pad]


@dataclass(frozen=True)
class UprightReading:
    """Stage 1's second reading of a leaning neck: ``clean`` holds the labels turned back onto
    the model grid (the rest of it is the level count's in the upright frame), ``check`` the
    checks made upright with the coverage made on the model grid, and ``passed`` whether it
    leaves no study reason and no level indeterminate."""

    clean: CleanLabels
    check: SpineCheck
    passed: bool


def clean_and_check(
    labels: np.ndarray,
    hu: np.ndarray,
    cfg: PreprocessConfig,
    *,
    input_problems: tuple[str, ...] = (),
    min_voxels: int = 10,
    assign_levels: bool = True,
    onto_bodies: bool = False,
) -> tuple[CleanLabels, SpineCheck]:
    """Stage 1's grid ``labels`` cleaned up, their levels assigned (``assign_levels``) and,
    with ``onto_bodies`` (planes square to the column), their boundaries moved onto the bodies'
    tops found in ``hu`` (:func:`~.levels.onto_body_tops`); then checked, as every reading is."""
    step, px = cfg.slice_step_mm, cfg.pixel_spacing_mm
    clean = clean_labels(
        labels,
        min_voxels=min_voxels,
        slice_step_mm=step if assign_levels else None,
        hu=hu,
        pixel_mm=px,
    )
    if onto_bodies and assign_levels:
        tops = find_anchors(hu, clean.labels, step, px).body_tops
        clean = replace(clean, labels=onto_body_tops(clean.labels, tops)[0])
    check = check_cleaned(
        clean,
        (step, px, px),
        hu,
        input_problems=input_problems,
        levels_assigned=assign_levels,
        min_voxels=min_voxels,
    )
    return clean, check


def second_reading_lean(
    check: SpineCheck, labels: np.ndarray, step_mm: float, pixel_mm: float
) -> float | None:
    """The lean to turn by (the labelled column's, in degrees) when a reading left the study or
    a level indeterminate (among the study reasons: no C1 found above a whole C2) and labelled
    something to turn about, else None."""
    if not _unsure(check) or not np.any(labels):
        return None
    return column_lean_deg(labels, step_mm, pixel_mm)


def turned_deg(lean_deg: float) -> tuple[float, float]:
    """The two turns :func:`read_upright` reads the CT at, in degrees (the column upright, and
    left leaning ``UPRIGHT_SECOND_DEG`` its own way)."""
    return lean_deg, _leaning_less(lean_deg, UPRIGHT_SECOND_DEG)


def _leaning_less(deg: float, extra_deg: float) -> float:
    """A turn by ``deg`` less ``extra_deg``: the column left leaning that much its own way."""
    return deg - math.copysign(extra_deg, deg)


def read_upright(
    engine: Predictor,
    prepared: PreparedVolume,
    first: CleanLabels,
    lean_deg: float,
    *,
    min_voxels: int = 10,
    assign_levels: bool = True,
    cancel: CancelToken = None,
) -> UprightReading:
    """Stage 1 on the CT turned upright by ``lean_deg`` and on it left leaning
    ``UPRIGHT_SECOND_DEG``, averaged, counted, cleaned and checked upright (see the module).
    Only a study whose input raised no reason is read again, so none is passed on."""
    cfg = prepared.cfg
    step, px = cfg.slice_step_mm, cfg.pixel_spacing_mm
    turn = Turn.upright(first.labels, lean_deg, step, px, UPRIGHT_SECOND_DEG)
    upright_hu = turn.to_upright(prepared.hu)
    mean: np.ndarray | None = None
    for extra in (0.0, UPRIGHT_SECOND_DEG):
        hu = upright_hu if extra == 0.0 else turn.to_upright(prepared.hu, extra)
        grid = run_model(engine, _on(prepared, hu), cancel=cancel, probabilities=True)
        assert grid.probabilities is not None  # asked for
        p = grid.probabilities.astype(np.float32)
        p = p if extra == 0.0 else turn.into_upright(p, extra)
        mean = p if mean is None else mean + p
    assert mean is not None
    upright, check = clean_and_check(
        np.argmax(mean, axis=-1).astype(np.uint8),
        upright_hu,
        cfg,
        min_voxels=min_voxels,
        assign_levels=assign_levels,
        onto_bodies=True,
    )
    passed = not _unsure(check)
    back = turn.labels_back(upright.labels)
    check = with_scan_edges(check, back, min_voxels)
    return UprightReading(replace(upright, labels=back), check, passed)


def _unsure(check: SpineCheck) -> bool:
    """A study reason stands, or a level found is indeterminate."""
    return bool(check.study_reasons) or any(
        check.status[n] not in (ASSESSED, PARTLY_IN_VIEW, NOT_IN_VIEW) for n in NAMES
    )


def _on(prepared: PreparedVolume, hu: np.ndarray) -> PreparedVolume:
    """``prepared`` with the turned CT (its geometry is not used by a model pass)."""
    return replace(prepared, hu=hu, source_z=np.arange(hu.shape[0], dtype=np.float64))
