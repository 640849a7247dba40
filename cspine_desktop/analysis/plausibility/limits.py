"""What the plausibility checks measure against: the statuses they give and the limits.

Each limit says where its value comes from (ANATOMY: the adult textbook values; the benchmarks
for what the demo model needs on unseen phantom studies).
"""

from __future__ import annotations

from dataclasses import dataclass

ASSESSED, PARTLY_IN_VIEW, NOT_IN_VIEW, INDETERMINATE = (
    "assessed",
    "partly_in_view",
    "not_in_view",
    "indeterminate",
)
VERTEBRA_STATUSES = (ASSESSED, PARTLY_IN_VIEW, NOT_IN_VIEW, INDETERMINATE)
PATIENT_STATUSES = (ASSESSED, INDETERMINATE)

# ---------------------------------------------------------------------------------- the limits
MAX_SLICE_MM = 5.0
"""Thickest slice (or slice spacing) a fracture verdict is given for, mm."""

AIR_HU = -500.0
MIN_AIR_SHARE = 0.001
"""A CT in Hounsfield units holds air (−1000 HU) round the neck and in the airway, and most
scanners pad outside the reconstruction circle below −1000: on real CTs (neck, chest,
abdomen, a DICOM series of the lower body) and phantom studies 30–90 % of the voxels lie
below ``AIR_HU``. Fewer than ``MIN_AIR_SHARE`` of them means the values are not HU: an MR (a
real one, read from NIfTI where no modality is stored, has none below 0), or a CT whose stored
values were never rescaled."""

BONE_HU = 300.0
MIN_BONE_SHARE = 0.001
"""A CT of the neck shows bone: the vertebrae, and the mandible, skull or clavicles beside them.
On real CTs (a neck slice, the chest, the abdomen, the lower body) 1.0–4.8 % of the voxels lie
above ``BONE_HU``, on phantom studies at least 1.4 %. Fewer than ``MIN_BONE_SHARE`` of them
means the images hold no bone to judge: a CT of the brain alone (pydicom's enhanced CT example:
none above 172 HU), or a CT whose values were clipped below bone."""

LEVEL_BONE_HU = 150.0
"""Least 90th percentile of the HU inside one level's label. A vertebra is bone: its cortex
(500–1500 HU, thinner and partial-volumed on the model grid) and cancellous bone (150–400 HU,
lower with osteoporosis) make the densest tenth of its voxels at least 284 HU on 2,520 true
levels of phantom studies, 496–709 HU for C6 to T4 on a real chest CT with TotalSegmentator's
labels. Muscle is 40–60 HU and fat below 0 (ANATOMY); even with the noise of a bone kernel
(20–60 HU standard deviation) the densest tenth of muscle is at most about 140 HU. A label
whose densest tenth is below this lies on soft tissue, not on a vertebra."""

MAX_NECK_SECTION_CM2 = 300.0
"""Largest cross-section of the body (cm²) a plane through a neck can have. A neck is 30–55 cm
round, even in severe obesity (ANATOMY: its soft tissue ≈ 110–130 mm wide), and a circle, the
largest shape of a given perimeter, 55 cm round holds 241 cm². A CT whose every plane is larger
shows no neck: on four real CTs of the chest and abdomen the smallest plane holds 446–738 cm²,
on 150 phantom necks 62–139 cm² (docs/benchmarks.md)."""

MAX_RELABELLED_FRACTION = 0.35
"""Largest share of vertebra pixels the level assignment may relabel. On unseen phantom studies
the demo model's labels need 4–20 % (docs/benchmarks.md); a real head-and-neck CT whose C2 was
found on the clivus needed 74 %. Where the anatomy found in the CT confirmed the count at every
boundary (``check_spine(levels_confirmed=True)``) it applies to C1 and C2 only."""

C2_WHOLE_MM = 25.0
"""Shortest head–feet extent of a whole C2, dens and body: the dens ≈ 15 mm on a C3-sized body
13–15 mm tall (ANATOMY); on 360 true label maps of phantom studies C2 is 30–60 mm tall. A count
that relabelled more than ``levels.RELABEL_WARNING_SHARE`` of the pixels and left C2 shorter
than this cut C2 at its own body's top: where true labels were named one too high with nothing
above C1 (C1 labelled C2, C2 labelled C3, …) and counted again from the dens, 27–34 % was
relabelled and C2 left 18–22 mm tall, C2's body named C3 and every level below it one too high
(docs/benchmarks.md, "C1 labelled C2 with nothing above it")."""

C1_RING_MM2 = 300.0
C1_RING_WIDTH_MM = 55.0
"""A "C2" that encloses more than ``C1_RING_MM2`` and is wider than ``C1_RING_WIDTH_MM`` is C1's
ring: C1 surrounds the dens and the canal (≈ 400–700 mm², 75–80 mm wide, ANATOMY: C1), C2 only
its canal (≈ 150–240 mm², 40–55 mm wide). On 360 true label maps of phantom studies C2 encloses
67–259 mm² and is 40–51 mm wide, on stage 1's labels of them at most 316 mm² (49 mm wide) and
69 mm (never both above these, for 0.7.3 or the fine-tuned stage 1), and C1 labelled C2
339–806 mm², 69–89 mm wide. With the head turned 30° and nodded 24° on C2 (beyond the
phantom's range), C1's ring cuts the axial planes at a slant and measures 59 mm across; 60 mm
let it through."""

C1_OVER_C2_MAX = 1.6
"""A C1 holding more than this many times C2's volume holds C2 as well: C2 is the larger
vertebra (body, dens and the largest cervical spinous process; ANATOMY: C1, C2). On the true
label maps of 480 phantom studies C1 holds 0.56–0.91 times C2's volume, on stage 1's labels of
them (after the level assignment) at most 1.18. The true labels named one too low with C1 and
C2 labelled C1 together, where the level assignment left them so (6 of 340 studies), give
2.19–2.39, and all their levels below are then named one too low with sizes that fit."""

C1_OVER_C2_MIN = 0.3
"""A C1 holding less than this share of C2's volume has lost part of itself: to C2 (the count
began on bone above C1 and named C1's ring C2), or stage 1 did not find it. On the true level
maps of 480 phantom studies C1 holds 0.56–0.91 of C2; about half the smallest is allowed. C1
and C2 are then indeterminate (a fracture of C1's ring would be reported at C2)."""

C2_OVER_C3_MAX = 2.0
"""A C2 holding more than this many times C3's volume holds C3 as well, and every level below
it is named one too low: on the true level maps of 360 phantom studies C2 holds 1.14–1.60
times C3's volume. On a held-out phantom whose true labels were named one too low with C1 and C2
labelled C1 together, the count gave C2 back the dens and C3's body with it (2.07 times "C3",
which was C4) and left C3–C5 assessed one level off."""

C7_OVER_C4_C5_MAX = 1.8
"""A C7 holding more than this many times the mean volume of C4 and C5 holds C6 as well, and
every level above it is named one too high: C7 holds 1.10–1.42 of that mean on the true maps of
360 phantom studies. On stage 1's labels of them it reached 2.61 only where other checks had
already left the study to the reader; on a held-out askew phantom named as the real failure
(skull base C1), "C7" held C6 and C7 (2.1 times) with C5 and C6 assessed one level off."""

LOWEST_SEEN_BELOW_MM = 20.0
"""Images that go on this far below the lowest level found (not cut by the scan) show the
vertebra below it: about a C7 body and its disc (ANATOMY: C3–C7 bodies 13–15 mm, discs
4–6 mm). When that level is not C7, C7 was missed — or every level was named one too low and
the lowest is the next vertebra down. On stage 1's labels of 360 phantom studies (after the
level assignment) and on their true labels, C7 was always found; on the true labels named one
too low with C1 and C2 labelled C1 together, C7 was missing in 28, with 0–82 mm of images
below the lowest level (at least 20 in 14)."""

MAX_GAP_MM = 12.0
"""Widest head–feet gap between neighbouring levels: a disc is 4–6 mm (ANATOMY: discs),
doubled for thin segmentations at the end-plates."""

CANAL_MIN_MM2 = 50.0
"""Smallest canal cross-section (mm²) enclosed by a level's outline. The cervical canal is a
triangle AP 14–17 × 22–28 mm (≈ 150–240 mm², ANATOMY: spinal canal); a third of that allows for
stenosis and a segmentation that closes only part of the ring."""

CANAL_MAX_MM2 = 900.0
"""Largest hole a vertebra's outline may enclose: the C1 ring around the dens and the canal
(outer AP ≈ 45 mm, ANATOMY: C1) encloses ≈ 400–700 mm²; larger holes are not a canal."""

CANAL_MAX_HU = 200.0
"""The canal holds cord and CSF (0–35 HU) and epidural fat; a "hole" whose median is denser than
this is bone the segmentation left out, not a canal."""

CANAL_GAP_MM = 5.0
"""Widest gap in a level's ring that the canal search bridges when the ring, as segmented, is
nowhere closed. Stage 1 sometimes leaves the laminae's junction out for a plane or two: on the
demo model's labels of 280 phantom studies, one C7 (true canal 163 mm²) had no closed ring
until gaps of 5 mm were bridged (155 mm² then). The ring is first searched with the gaps of one
or two pixels closed, and this only where none was found."""

CANAL_SLAB_MM = 10.0
"""Thickness of the slabs whose outline is searched for the canal: the pedicles and laminae
that close the ring around it are 5–10 mm tall."""

MAX_CANAL_STEP_MM = 12.0
"""Largest in-plane shift of the canal's centre from one level's middle to the next's
(lordosis moves it by 2–6 mm per level; on the phantom's true level maps of 200 studies the
largest of 1,200 steps is 11.2 mm, the lower neck leaning toward the chest)."""

SQUEEZED_SHARE = 0.6
"""Smallest volume of a level between two others (C3–C6), as a share of its neighbours' mean.
Neighbouring vertebrae are alike in size (ANATOMY: C3–C7 bodies 13–15 mm tall, 15–20 mm wide);
on 800 true level maps of phantom studies C3–C6 hold 0.75–1.14 of their neighbours' mean. A
level under this share has lost part of itself to its neighbours: on the demo model's labels
of 200 phantom studies the 16 levels under it had 25–88 % of their vertebra labelled as another
level, where a fracture would be reported at the wrong level (docs/benchmarks.md, "Plausibility
checks"). A vertebra crushed flat (vertebra plana) can fall under it too, and is then left to
the reader with the reason."""

C7_OVER_C4_C5_MIN = 0.8
"""Smallest volume of C7, as a share of the mean of C4 and C5. C7 is the largest of C3–C7 (the
widest transverse processes and the longest spinous process, ANATOMY: C7): on the true level
maps of 360 phantom studies C7 holds 1.10–1.42 of that mean. A C7 under this share has lost
part of itself: to C6 above it, or stage 1 did not find all of it (a posed neck on which stage 1
split C6 in two, named the lower half C7 and left the true C7 unlabelled; a C7 cut short where
the level assignment took the first ribs' top for its end). The C6 above it is then in doubt
too. A collapsed C7 can fall under it as well, and is then left to the reader with the reason."""

C7_OVER_C6_MIN = 0.65
"""Smallest volume of C7, as a share of C6's. C7 is the larger of the two in every true level
map of 1,297 phantom studies (the saved benchmark grids; the smallest share 0.89, one in two
hundred under 1.03, counted in pixels). On a trauma scan of a neck leaning 19° (seed 88000097)
stage 1 gave the lower part of C7 (its long spinous process, lying low on the leaning neck) to
C6 and left the rest unlabelled: C7 held 0.52 of C6 and 0.86 of the mean of C4 and C5, over
``C7_OVER_C4_C5_MIN``, and was assessed with 63 % of its vertebra under its name. Of the 1,186
first readings of those studies that assessed every level, no other C7 held under 0.75 of C6.
Under this share C7 and C6 are indeterminate, as two neighbours from C3 to C6 are under
``NEIGHBOUR_SHARE_MIN``."""

NEIGHBOUR_SHARE_MIN = 0.65
"""Smallest volume of one of two neighbouring levels from C3 to C6, as a share of the other's.
On the true level maps of 360 phantom studies the smaller of two such neighbours holds at least
0.79 of the larger. Under 0.65 the larger may hold part of the smaller (a fifth of one vertebra
labelled as its neighbour leaves 0.67, a quarter 0.6): both are indeterminate. On necks posed
beyond the phantom's range, stage 1 gave C3 the upper 34–42 % of C4, leaving C4 at 0.56–0.63
of C3 but over ``SQUEEZED_SHARE`` of its two neighbours' mean."""

CORE_PLANE_SHARE = 0.1
"""A level from C3 to C7 is too tall for its range only by the planes where it holds at least
this share of its largest plane. Stage 1 labels a few pixels of a level in its neighbours'
planes (the processes of one vertebra beside the body of the next): on the demo model's labels
of 280 phantom studies two levels spread so over 46 and 54 mm, though the vertebra under their
name was theirs; held to this share they span at most 42 mm (the true maps: at most 34 mm for
C3–C6, against 40 mm counting every plane with a pixel). A level's lower limits, C1 and C2
(whose thin arches and dens are their own: C2, dens and body, labelled C1 is a C1 too tall only
counting the dens's planes) and C2's own length checks still count every plane it is found on."""

EDGE_CUT_FRACTION = 0.2
"""A level touching the first or last plane is cut when that plane still shows at least this
share of the level's largest cross-section: more than the tip of a process lies outside."""


@dataclass(frozen=True)
class LevelRange:
    """Plausible size of one level's whole label (body, arch and processes), as segmented:
    (low, high) for the volume (ml), height = head–feet extent, width = left–right extent and
    depth = front–back extent (mm)."""

    volume_ml: tuple[float, float]
    height_mm: tuple[float, float]
    width_mm: tuple[float, float]
    depth_mm: tuple[float, float]


_SUBAXIAL = LevelRange(
    volume_ml=(3.0, 32.0), height_mm=(10.0, 45.0), width_mm=(30.0, 70.0), depth_mm=(30.0, 75.0)
)
LEVEL_RANGES: dict[str, LevelRange] = {
    "C1": LevelRange(
        volume_ml=(1.5, 28.0), height_mm=(4.0, 38.0), width_mm=(50.0, 105.0), depth_mm=(25.0, 65.0)
    ),
    "C2": LevelRange(
        volume_ml=(4.0, 40.0), height_mm=(16.0, 68.0), width_mm=(30.0, 72.0), depth_mm=(32.0, 78.0)
    ),
    "C3": _SUBAXIAL,
    "C4": _SUBAXIAL,
    "C5": _SUBAXIAL,
    "C6": _SUBAXIAL,
    "C7": LevelRange(
        volume_ml=(3.0, 38.0), height_mm=(10.0, 52.0), width_mm=(35.0, 85.0), depth_mm=(35.0, 90.0)
    ),
}
"""Sizes of each level's whole label. From ANATOMY (adult textbook values): C3–C7 bodies
15–20 mm wide, 15–17 mm deep and 13–15 mm tall, behind them a canal 14–17 mm deep and 22–28 mm
wide, short bifid spinous processes, C7's 15–20 mm longer; transverse processes with a 5–6 mm
foramen; C1 a ring ≈ 45 mm deep and 75–80 mm wide; C2's dens ≈ 15 mm tall on a C3-sized body.
A whole subaxial level is therefore ≈ 40–55 mm wide, 40–60 mm deep and, with the down-sloping
processes, 20–35 mm tall; volumes 7–18 ml (C2 and C7 the largest). The ranges widen these by
about a third each way for build, age, lordosis and segmentation error. Thoracic levels (with
their transverse processes ≈ 60–75 mm wide, 55–75 mm tall) and lumbar ones (75–95 mm wide,
> 50 ml) fall outside."""
