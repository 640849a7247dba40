"""Opening a study: load → store → analyse (job queue) → show, all off the GUI thread."""

from .controller import StudyController
from .open_study import OpenStudy

__all__ = ["OpenStudy", "StudyController"]
