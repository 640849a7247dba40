"""The embedded HTTP endpoint: JSON API, DICOMweb STOW-RS and web pages (Flask + waitress).

``create_app(config, services)`` builds the app; :class:`ServerRunner` serves it in a
background thread (the desktop app) or the foreground (``cspine serve``)::

    app = create_app(settings, services)      # or a ServerConfig for other limits
    runner = ServerRunner(app, settings)      # host/port/TLS/LAN permission from settings
    url = runner.start()                      # SettingsError with a plain message if it can't
    runner.state, runner.port, runner.is_running()
    runner.stop()                             # also publishes STOW-RS studies still collecting
"""

from .app import create_app
from .config import ServerConfig
from .runner import ServerRunner

__all__ = ["ServerConfig", "ServerRunner", "create_app"]
