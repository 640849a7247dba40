"""``cspine gui`` (also ``python -m cspine_desktop``): the desktop workstation.

This module is the one place that knows both front ends: it hands the GUI a small control for
the embedded HTTP endpoint (start/stop), so the GUI itself never imports the server.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ..settings import Settings

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gui",
        help="start the desktop workstation",
        description="Start the desktop workstation (sign-in, worklist, viewer, verdicts).",
    )
    parser.set_defaults(func=run)


class EmbeddedServer:
    """Start/stop the HTTP endpoint inside this process (the GUI's ServerControl)."""

    def __init__(self, services: Any) -> None:
        self.services = services
        self._endpoint: Any = None

    def start(self, settings: Settings) -> str:
        from ..server import HttpEndpoint, create_app

        app = create_app(settings, self.services)
        self._endpoint = HttpEndpoint(app, settings)
        return self._endpoint.start()

    def stop(self) -> None:
        if self._endpoint is not None:
            self._endpoint.stop()
            self._endpoint = None

    def is_running(self) -> bool:
        return self._endpoint is not None and self._endpoint.is_running()


def run(args: argparse.Namespace, settings: Settings) -> int:
    from ..gui.app import run_app
    from ..services import Services

    services = Services.open(settings)
    try:
        return run_app(settings, services, EmbeddedServer(services))
    finally:
        services.close()
