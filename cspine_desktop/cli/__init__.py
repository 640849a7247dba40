"""The ``cspine`` command line: one entry point, one module per subcommand.

Each module in :data:`COMMANDS` defines ``register(subparsers)``, which adds its subcommand and
sets ``func(args, settings) -> int`` as the handler. Errors meant for the user
(:class:`~cspine_desktop.errors.UserFacingError`) become a plain message and exit code 2;
anything else is an internal error: exit code 1, traceback only in the log file.

Logging: everything (cspine's own records, third-party libraries, Python warnings) goes to a
rotating log file, ``cspine.log`` in the per-user log folder (5 files of at most 5 MiB). The
terminal shows only cspine's own warnings and errors, so that a command's result (the verdict
table) is the first thing a user reads; ``--verbose`` shows everything there too.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import logging.handlers
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..errors import UserFacingError
from ..imaging.loader import set_max_voxels
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
LOG_FILE = "cspine.log"
LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 4  # cspine.log + cspine.log.1 … .4
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
OWN_LOGGERS = ("cspine", "cspine_desktop")


class _OwnRecords(logging.Filter):
    """Lets through cspine's own records only (third-party chatter stays in the log file)."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        return any(name == own or name.startswith(own + ".") for own in OWN_LOGGERS)


class _Brief(logging.Formatter):
    """One line per record: tracebacks go to the log file, not the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
    """``--verbose`` on a subcommand (same as ``cspine --verbose COMMAND``)."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,  # keeps a --verbose given before the subcommand
        help="also show progress messages, library logs and warnings on the terminal",
    )


def log_file_path(settings: Settings) -> Path:
    return settings.log_dir / LOG_FILE


def setup_logging(settings: Settings, verbose: bool = False) -> Path | None:
    """Route logs: all to the rotating log file; the terminal gets cspine's own warnings and
    errors (everything with ``verbose``). Returns the log file, or None if it cannot be
    written (then the terminal gets every warning). Safe to call more than once."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_cspine", False)]:
        root.removeHandler(handler)
        handler.close()
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        level = logging.INFO
    root.setLevel(min(level, logging.INFO) if verbose else level)
    formatter = logging.Formatter(LOG_FORMAT)
    target = log_file_path(settings)
    path: Path | None = target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        to_file: logging.Handler = logging.handlers.RotatingFileHandler(
            target, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8", delay=True
        )
        if os.name == "posix":
            target.touch(mode=0o600, exist_ok=True)
    except OSError:
        path, to_file = None, logging.NullHandler()
    to_file.setFormatter(formatter)
    to_file.setLevel(level)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(formatter if verbose or path is None else _Brief(LOG_FORMAT))
    if verbose:
        console.setLevel(min(level, logging.INFO))
    else:
        console.setLevel(logging.WARNING)
        if path is not None:
            console.addFilter(_OwnRecords())
    for handler in (to_file, console):
        handler._cspine = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    # warnings.warn → the "py.warnings" logger → the log file. Off first: captureWarnings(True)
    # does nothing while it believes it is on, even if something (a test harness, an embedding
    # application) has put its own warnings.showwarning back since
    logging.captureWarnings(False)
    logging.captureWarnings(True)
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cspine",
        description="Cervical-spine CT fracture detection (decision support, not for "
        "diagnostic use).",
    )
    parser.add_argument("--version", action="version", version=f"cspine {__version__}")
    parser.add_argument("--data-dir", help="data directory (default: per-user data dir)")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING, ERROR")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show progress messages, library logs and warnings on the terminal",
    )
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
    log_path: Path | None = None
    try:
        settings = Settings.load({"data_dir": args.data_dir, "log_level": args.log_level})
        log_path = setup_logging(settings, verbose=bool(getattr(args, "verbose", False)))
        set_max_voxels(settings.max_image_voxels)  # the GUI and the server run from here too
        return int(args.func(args, settings) or EXIT_OK)
    except UserFacingError as err:
        print(f"cspine: {err}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("cspine: interrupted", file=sys.stderr)
        return 130
    except Exception:  # the edge: log the traceback, tell the user plainly
        log.exception("internal error")
        where = f" ({log_path})" if log_path else ""
        print(
            f"cspine: internal error (a bug, not your input); details are in the log{where}.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
