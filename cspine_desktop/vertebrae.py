"""C1–C7: label values, names, display colours and codes — the one place they are defined.

Label values follow RSNA 2022 / VerSe: 0 background, 1–7 = C1–C7. Colours are those of
SlicerTotalSegmentator, codes SNOMED CT (category 123037004 "Anatomical structure").
"""

from __future__ import annotations

from dataclasses import dataclass

BACKGROUND = 0


@dataclass(frozen=True)
class Vertebra:
    label: int  # voxel value in label maps
    name: str  # "C1" … "C7"
    rgb: tuple[int, int, int]
    snomed_code: str
    snomed_meaning: str


VERTEBRAE: tuple[Vertebra, ...] = (
    Vertebra(1, "C1", (255, 186, 107), "14806007", "C1 vertebra"),
    Vertebra(2, "C2", (193, 99, 36), "39976000", "C2 vertebra"),
    Vertebra(3, "C3", (167, 117, 152), "113205007", "C3 vertebra"),
    Vertebra(4, "C4", (250, 14, 116), "5329002", "C4 vertebra"),
    Vertebra(5, "C5", (118, 40, 9), "36978003", "C5 vertebra"),
    Vertebra(6, "C6", (253, 134, 125), "36054005", "C6 vertebra"),
    Vertebra(7, "C7", (255, 0, 0), "87391001", "C7 vertebra"),
)
NAMES: tuple[str, ...] = tuple(v.name for v in VERTEBRAE)
N_CLASSES = len(VERTEBRAE) + 1  # background + C1..C7
SNOMED_CATEGORY = ("123037004", "Anatomical structure")
# The fracture heat-map's colour scale, (low, high): probability 0 → 1 runs from blue to cyan.
# Every vertebra colour above is warm (orange, red, pink, brown) or a muted mauve; this scale
# stays far from all of them (CIE76 ΔE ≥ 40 at every point, checked by the tests), so heat is
# never mistaken for a level label.
HEAT_SCALE_RGB: tuple[tuple[int, int, int], tuple[int, int, int]] = ((40, 70, 255), (0, 235, 255))
# The heat-map colour of the exported key images and the fracture SEG's display colour: the
# top of the viewer's scale (a key image blends it in by probability, as the viewer does).
FRACTURE_RGB: tuple[int, int, int] = HEAT_SCALE_RGB[1]
EDGE_RGB = (120, 255, 60)  # the edge feature map: green, apart from the labels and the heat


def heat_rgb(p: float) -> tuple[int, int, int]:
    """The heat-map colour of probability ``p`` (clipped to 0–1) on :data:`HEAT_SCALE_RGB`."""
    t = min(1.0, max(0.0, float(p)))
    lo, hi = HEAT_SCALE_RGB
    return tuple(round(a + (b - a) * t) for a, b in zip(lo, hi))  # type: ignore[return-value]


# The finding the model reports (SNOMED CT), for DICOM SEG/SR exports.
FRACTURE_CODE = ("72704001", "Fracture")
FRACTURE_CATEGORY = ("49755003", "Morphologically abnormal structure")


def by_name(name: str) -> Vertebra:
    """The vertebra called ``name`` ("C1".."C7", case-insensitive)."""
    for v in VERTEBRAE:
        if v.name == name.upper():
            return v
    raise KeyError(name)
