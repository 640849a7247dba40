"""What the workstation has open: the study record, its volume, and (once analysed) the
verdicts with labels and heat-map on the source grid. Has the attributes the exports read
(``result``, ``volume``, ``labels``, ``heatmap``), so it can be handed to
:mod:`cspine_desktop.reports` like an AnalysisOutcome."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...analysis.result import AnalysisResult
from ...imaging.volume import Volume
from ..models.patient import describe_meta, window_title


@dataclass
class OpenStudy:
    volume: Volume
    study: object | None = None  # StudyRecord once stored
    result: AnalysisResult | None = None
    labels: np.ndarray | None = None  # uint8 [z, y, x], 0 bg, 1–7 C1–C7
    heatmap: np.ndarray | None = None  # float32 [z, y, x] in [0, 1]
    job_id: str | None = None
    warnings: list[str] = field(default_factory=list)
    # export format → None if available, else the reason (filled off the GUI thread, because
    # checking imports the DICOM writers)
    export_formats: dict[str, str | None] = field(default_factory=dict)

    @property
    def study_id(self) -> str | None:
        return getattr(self.study, "id", None)

    @property
    def analysed(self) -> bool:
        return self.result is not None

    def title(self) -> str:
        """Patient name, shortened ID and study description for the window title."""
        return window_title(self.volume.meta, self.study)

    def describe(self) -> str:
        """Patient and study in the words confirmations use."""
        return describe_meta(self.volume.meta, self.study)
