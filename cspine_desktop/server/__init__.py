"""The embedded HTTP endpoint: JSON API, DICOMweb STOW-RS and web pages (Flask + waitress).

``create_app(config, services)`` builds the app; :class:`ServerRunner` serves it in a
background thread (the desktop app) or the foreground (``cspine serve``).
"""

from .app import create_app
from .config import ServerConfig
from .runner import ServerRunner

__all__ = ["ServerConfig", "ServerRunner", "create_app"]
