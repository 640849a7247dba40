"""The image viewer: one :class:`SliceView` per plane, combined in :class:`ViewerWidget`."""

from .slice_view import SliceView
from .viewer_widget import ViewerWidget

__all__ = ["SliceView", "ViewerWidget"]
