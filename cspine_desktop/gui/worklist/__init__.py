"""The worklist: every stored study (local imports and remote uploads) with its latest
analysis state and verdict, updated live from the job queue."""

from .panel import WorklistPanel
from .rows import WorklistRow, fetch_rows

__all__ = ["WorklistPanel", "WorklistRow", "fetch_rows"]
