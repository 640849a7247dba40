"""What the dataset reader and cache builder left out, and why.

Bad input (a CSV without its columns, a study listed without images, a mask whose geometry
disagrees with its images, an unreadable file) never stops a read or an epoch: the item is
recorded here and the rest goes on. The report is written as JSON next to the cache so a
training run can be audited.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

# What happened to the item.
SKIPPED = "skipped study"  # the study is not used at all
PARTIAL = "used without it"  # the study is used, this part of it (boxes, a mask) is not
NOTE = "note"  # nothing was dropped; worth knowing


@dataclass(frozen=True)
class Skipped:
    """One left-out item: ``study_uid`` ("" for dataset-wide problems), the ``stage`` that
    found it (csv, images, segmentation, fracture_mask, boxes, extras, cache), the ``reason``
    in words, the ``path`` concerned, and the ``action`` taken (SKIPPED, PARTIAL or NOTE)."""

    study_uid: str
    stage: str
    reason: str
    path: str = ""
    action: str = SKIPPED


@dataclass
class SkipReport:
    """Every item left out while reading or caching a dataset, in the order found."""

    items: list[Skipped] = field(default_factory=list)

    def add(
        self,
        study_uid: str,
        stage: str,
        reason: str,
        path: str | os.PathLike[str] = "",
        *,
        action: str = SKIPPED,
    ) -> None:
        self.items.append(Skipped(str(study_uid), stage, reason, str(path), action))

    def extend(self, other: SkipReport | list[Skipped]) -> None:
        self.items.extend(other.items if isinstance(other, SkipReport) else other)

    @property
    def skipped_studies(self) -> set[str]:
        """UIDs of studies that are not used at all."""
        return {i.study_uid for i in self.items if i.action == SKIPPED and i.study_uid}

    def for_study(self, study_uid: str) -> list[Skipped]:
        return [i for i in self.items if i.study_uid == study_uid]

    def summary(self) -> str:
        """One line per (stage, action) with a count, for logs."""
        counts = Counter((i.stage, i.action) for i in self.items)
        if not counts:
            return "nothing skipped"
        return "; ".join(
            f"{stage}: {n} × {action}" for (stage, action), n in sorted(counts.items())
        )

    def to_dict(self) -> dict:
        return {
            "n_items": len(self.items),
            "skipped_studies": sorted(self.skipped_studies),
            "items": [asdict(i) for i in self.items],
        }

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the report as JSON (UTF-8, indented); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> SkipReport:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls([Skipped(**i) for i in d.get("items", [])])
