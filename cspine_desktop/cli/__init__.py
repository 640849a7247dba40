"""The ``cspine`` command line: one entry point, one module per subcommand.

Each module in :data:`COMMANDS` defines ``register(subparsers)``, which adds its subcommand and
sets ``func(args, settings) -> int`` as the handler. Errors the user caused
(:class:`~cspine_desktop.errors.CspineInputError`) become a plain message and exit code 2;
anything else is an internal error: exit code 1, traceback only in the log file.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import CspineInputError
from ..settings import Settings

log = logging.getLogger("cspine")

# subcommand modules, in the order ``cspine --help`` lists them
COMMANDS: tuple[str, ...] = (
    "users",
    "admin",
    "analyze",
    "gui",
    "serve",
    "selftest",
    "bench",
    "demo",
)

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cspine",
        description="Cervical-spine CT fracture detection (decision support, not for "
        "diagnostic use).",
    )
    parser.add_argument("--version", action="version", version=f"cspine {__version__}")
    parser.add_argument("--data-dir", help="data directory (default: per-user data dir)")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_INPUT
    try:
        settings = Settings.load({"data_dir": args.data_dir, "log_level": args.log_level})
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        return int(args.func(args, settings) or EXIT_OK)
    except CspineInputError as err:
        print(f"cspine: {err}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("cspine: interrupted", file=sys.stderr)
        return 130
    except Exception:  # the edge: log the traceback, tell the user plainly
        log.exception("internal error")
        print(
            "cspine: internal error (a bug, not your input); details are in the log.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
