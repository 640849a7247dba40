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
FRACTURE_RGB = (255, 255, 0)  # heat-map colour at full probability
# The finding the model reports (SNOMED CT), for DICOM SEG/SR exports.
FRACTURE_CODE = ("72704001", "Fracture")
FRACTURE_CATEGORY = ("49755003", "Morphologically abnormal structure")


def by_name(name: str) -> Vertebra:
    """The vertebra called ``name`` ("C1".."C7", case-insensitive)."""
    for v in VERTEBRAE:
        if v.name == name.upper():
            return v
    raise KeyError(name)
