"""The embedded HTTP endpoint: JSON API, DICOMweb STOW-RS and web pages (Flask + waitress).

``create_app(config, services)`` builds the app; :class:`HttpEndpoint` serves it in a
background thread (the desktop app) or the foreground (``cspine serve``)::

    app = create_app(settings, services)      # or a ServerConfig for other limits
    endpoint = HttpEndpoint(app, settings)    # host/port/TLS/LAN permission from settings
    url = endpoint.start()                    # SettingsError with a plain message if it can't
    endpoint.state, endpoint.port, endpoint.is_running()
    endpoint.stop()                           # also publishes STOW-RS studies still collecting
"""

from .app import create_app
from .config import ServerConfig
from .endpoint import HttpEndpoint

__all__ = ["HttpEndpoint", "ServerConfig", "create_app"]
