"""``cspine gui`` is registered, and the embedded endpoint control it hands the GUI works."""

from __future__ import annotations

import json
import socket
import urllib.request

from fake_analysis import FakeRunner

from cspine_desktop.cli import build_parser
from cspine_desktop.cli.gui import EmbeddedServer, run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gui_subcommand_is_registered():
    args = build_parser().parse_args(["gui"])
    assert args.func is run


def test_embedded_server_starts_serves_and_stops(settings):
    from cspine_desktop.services import Services

    services = Services.open(settings, runner=FakeRunner(), bcrypt_rounds=4)
    server = EmbeddedServer(services)
    try:
        url = server.start(settings.replace(server_enabled=True, server_port=_free_port()))
        assert server.is_running() and url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/api/v1/health", timeout=10) as resp:
            assert resp.status == 200
            assert json.loads(resp.read())["status"] == "ok"
        server.stop()
        assert not server.is_running()
    finally:
        server.stop()
        services.close()
