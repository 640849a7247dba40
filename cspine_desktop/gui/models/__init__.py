"""Qt-free state behind the viewer: slice geometry, cursor/window/zoom, overlays, rendering.

Nothing here imports PySide6, so the behaviour the widgets show can be tested with numpy alone.
"""

from .events import Event
from .geometry import Orientation, SlicePlane
from .overlays import OverlayModel
from .viewer import Probe, ViewerModel, ViewTransform

__all__ = [
    "Event",
    "Orientation",
    "OverlayModel",
    "Probe",
    "SlicePlane",
    "ViewTransform",
    "ViewerModel",
]
