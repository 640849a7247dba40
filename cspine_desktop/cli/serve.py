"""``cspine serve``: run the HTTP endpoint without the desktop app (headless workstation).

Listens on 127.0.0.1:8765 by default. Any other address needs TLS (``--tls-cert``/``--tls-key``,
PEM files) or ``--allow-insecure-lan`` (then a warning is logged). Stops cleanly on Ctrl-C or
SIGTERM: running analyses are cancelled and queued again at the next start.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from ..settings import Settings


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the HTTP endpoint (API, DICOMweb STOW-RS, web pages) without the GUI",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
    )
    p.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="TCP port (default 8765)")
    p.add_argument(
        "--data-dir",
        dest="serve_data_dir",
        default=None,
        metavar="DIR",
        help="data directory (same as the global --data-dir)",
    )
    p.add_argument("--tls-cert", default=None, metavar="FILE", help="TLS certificate (PEM)")
    p.add_argument("--tls-key", default=None, metavar="FILE", help="TLS private key (PEM)")
    p.add_argument(
        "--allow-insecure-lan",
        action="store_true",
        default=None,
        help="allow a non-loopback address without TLS (trusted networks only)",
    )
    p.add_argument("--threads", type=int, default=8, help="HTTP worker threads (default 8)")
    p.set_defaults(func=run)


def settings_for(args: argparse.Namespace, settings: Settings) -> Settings:
    """Settings with the command's flags applied (flags > environment > file > defaults)."""
    overrides = {
        "data_dir": args.serve_data_dir or str(settings.data_dir),
        "log_level": settings.log_level,
        "server_host": args.host,
        "server_port": args.port,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
        "allow_insecure_lan": args.allow_insecure_lan,
    }
    return Settings.load(overrides)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from ..server import HttpEndpoint, create_app
    from ..services import Services

    settings = settings_for(args, settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    services = Services.open(settings)
    try:
        endpoint = HttpEndpoint(create_app(settings, services), settings, threads=args.threads)
        url = endpoint.start()
        try:
            if services.users.first_run():
                sys.stderr.write(
                    "cspine: no user account exists yet; create one with "
                    "'cspine users add NAME --role admin'.\n"
                )
            sys.stdout.write(f"cspine endpoint on {url} (Ctrl-C to stop)\n")
            sys.stdout.flush()
            while not stop.wait(0.5):
                if endpoint.state == "failed":
                    sys.stderr.write("cspine: the HTTP endpoint stopped; see the log.\n")
                    return 1
        finally:
            endpoint.stop()
    finally:
        services.close()
    return 0
