"""Is what the segmentation found a believable cervical spine? The checks, each failure in words.

A fracture verdict is only as good as the vertebrae it is about: "no fracture" said about a
clivus labelled C2, a lumbar spine or a single picture is a confident wrong answer. So every
analysis is checked, and whatever fails becomes a *reason* in plain words:

* **the input** — a CT series (``Modality``) whose values are Hounsfield units (some of it
  as dark as air, ``MIN_AIR_SHARE`` below ``AIR_HU``: judged from the images, as a NIfTI file
  carries no modality) showing bone (``MIN_BONE_SHARE`` above ``BONE_HU``) with a plane
  through a neck (a body cross-section of at most
  ``MAX_NECK_SECTION_CM2``, else it shows the chest or abdomen), not a single 2D image, with
  slices at most
  ``MAX_SLICE_MM`` thick: a fracture line is often 1–2 mm wide and is averaged away in a thicker
  slice (the RSNA 2022 challenge used ≤ 1 mm, C-spine protocols 0.5–3 mm);
* **the levels** — each level's label lies on bone (the densest tenth of it at least
  ``LEVEL_BONE_HU``; when most do not, what was segmented is not a spine); the levels found
  lie in head-to-feet order without a missing level or a gap
  wider than ``MAX_GAP_MM`` between neighbours; each has a volume, height (head–feet extent;
  C3–C7 too tall only by the planes holding at least ``CORE_PLANE_SHARE`` of their largest),
  width (left–right) and depth (front–back) inside ``LEVEL_RANGES``; when most levels are too
  large for a neck, the images show another part of the spine (judged from the images, never
  from the header's body part); a level between two others (C3–C6) holds at least
  ``SQUEEZED_SHARE`` of their mean volume (neighbouring vertebrae are alike; a level much
  smaller than its neighbours has lost part of itself to them, and it and they are
  indeterminate), the smaller of two neighbours from C3 to C6 at least ``NEIGHBOUR_SHARE_MIN``
  of the larger (else both, and the larger's other neighbour, are indeterminate), C1 at least
  ``C1_OVER_C2_MIN`` of C2's volume and C7 (the largest) at least ``C7_OVER_C4_C5_MIN`` of the
  mean of C4 and C5 and ``C7_OVER_C6_MIN`` of C6 (else the two neighbours, C1 and C2, or C6
  and C7 are indeterminate);
* **the canal** — each level's outline (axial footprint) encloses a vertebral canal of at least
  ``CANAL_MIN_MM2`` holding soft tissue, not bone (a ring nowhere closed is searched again with
  gaps up to ``CANAL_GAP_MM`` bridged), and the canal runs on from level to level;
* **the level assignment** — it relabelled at most ``MAX_RELABELLED_FRACTION`` of the pixels
  (where the dens, the first ribs and every vertebral body's top found in the CT agreed with
  the levels it counted, ``levels_confirmed``, only C1 and C2 are then left to the reader;
  where they did not, a count that relabelled over ``levels.RELABEL_WARNING_SHARE`` leaves
  C1 and C2 to the reader too),
  and, with the thorax in view, C7 lies just above the first ribs (T1's; ``level_problems``
  from :func:`~cspine_desktop.analysis.levels.assign_levels`); C1 or C2 larger than it can be
  (the count started on the skull base or on C1) makes every level indeterminate, and so do
  the signs of a naming one level off without the skull: a "C2" that is C1's ring
  (``C1_RING_MM2``, ``C1_RING_WIDTH_MM``), a C2 shorter than its range, or after heavy
  relabelling shorter than ``C2_WHOLE_MM`` or with no C1 left, a C1 as narrow as a C2, a C1
  more than ``C1_OVER_C2_MAX`` times C2's volume (C1 and C2 labelled C1 together), a C2
  more than ``C2_OVER_C3_MAX`` times C3's or a C7 more than ``C7_OVER_C4_C5_MAX`` times C4 and
  C5's mean (two vertebrae named as one), no C7
  though the images go on ``LOWEST_SEEN_BELOW_MM`` below the lowest level found, or a C7 smaller
  than any C7;
* **coverage** — a level cut by the top or bottom edge of the scan is *partly in view*.

Reasons about the whole study make every vertebra and the patient indeterminate; a reason
about one level makes that level indeterminate. :func:`final_verdicts` then says which fracture
verdicts may be given (a "fractured" flag only where the status is ``assessed``).

Labels are uint8 [z, y, x] with 0 background and 1–7 = C1–C7, **z increasing toward the feet**
(the model grid of :mod:`cspine_desktop.imaging.preprocess`), spacing (z, y, x) in mm, HU on the
same grid. Pure numpy/OpenCV.

The limits are in :mod:`.limits`, the measuring in :mod:`.measure`, the checks in
:mod:`.checks` and the verdicts that may then be given in :mod:`.verdicts`.
"""

from .checks import (
    SpineCheck,
    check_cleaned,
    check_spine,
    input_reasons,
    volume_input_reasons,
    with_scan_edges,
)
from .limits import (
    AIR_HU,
    ASSESSED,
    BONE_HU,
    C1_OVER_C2_MAX,
    C1_OVER_C2_MIN,
    C1_RING_MM2,
    C1_RING_WIDTH_MM,
    C2_OVER_C3_MAX,
    C2_WHOLE_MM,
    C7_OVER_C4_C5_MAX,
    C7_OVER_C4_C5_MIN,
    C7_OVER_C6_MIN,
    CANAL_GAP_MM,
    CANAL_MAX_HU,
    CANAL_MAX_MM2,
    CANAL_MIN_MM2,
    CANAL_SLAB_MM,
    CORE_PLANE_SHARE,
    EDGE_CUT_FRACTION,
    INDETERMINATE,
    LEVEL_BONE_HU,
    LEVEL_RANGES,
    MAX_CANAL_STEP_MM,
    MAX_GAP_MM,
    MAX_NECK_SECTION_CM2,
    MAX_RELABELLED_FRACTION,
    MAX_SLICE_MM,
    MIN_AIR_SHARE,
    MIN_BONE_SHARE,
    NEIGHBOUR_SHARE_MIN,
    NOT_IN_VIEW,
    PARTLY_IN_VIEW,
    PATIENT_STATUSES,
    SQUEEZED_SHARE,
    VERTEBRA_STATUSES,
    LevelRange,
)
from .measure import LevelMeasure, edge_cut_levels, measure_levels
from .verdicts import FinalVerdicts, final_verdicts

__all__ = [
    "AIR_HU",
    "ASSESSED",
    "BONE_HU",
    "C1_OVER_C2_MAX",
    "C1_OVER_C2_MIN",
    "C1_RING_MM2",
    "C1_RING_WIDTH_MM",
    "C2_OVER_C3_MAX",
    "C2_WHOLE_MM",
    "C7_OVER_C4_C5_MAX",
    "C7_OVER_C4_C5_MIN",
    "C7_OVER_C6_MIN",
    "CANAL_GAP_MM",
    "CANAL_MAX_HU",
    "CANAL_MAX_MM2",
    "CANAL_MIN_MM2",
    "CANAL_SLAB_MM",
    "CORE_PLANE_SHARE",
    "EDGE_CUT_FRACTION",
    "INDETERMINATE",
    "LEVEL_BONE_HU",
    "LEVEL_RANGES",
    "MAX_CANAL_STEP_MM",
    "MAX_GAP_MM",
    "MAX_NECK_SECTION_CM2",
    "MAX_RELABELLED_FRACTION",
    "MAX_SLICE_MM",
    "MIN_AIR_SHARE",
    "MIN_BONE_SHARE",
    "NEIGHBOUR_SHARE_MIN",
    "NOT_IN_VIEW",
    "PARTLY_IN_VIEW",
    "PATIENT_STATUSES",
    "SQUEEZED_SHARE",
    "VERTEBRA_STATUSES",
    "FinalVerdicts",
    "LevelMeasure",
    "LevelRange",
    "SpineCheck",
    "check_cleaned",
    "check_spine",
    "edge_cut_levels",
    "final_verdicts",
    "input_reasons",
    "measure_levels",
    "volume_input_reasons",
    "with_scan_edges",
]
