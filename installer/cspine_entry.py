"""Entry point of the installed (PyInstaller) app.

``cspine`` with no command starts the desktop workstation; ``cspine --self-test [options]``
runs ``cspine self-test``; any other command line is the ``cspine`` command line
(``cspine analyze STUDY``, ``cspine users ...``). Assets are found through
``sys._MEIPASS`` by :mod:`cspine_desktop.inference.resources`.
"""

from __future__ import annotations

import os

# before anything can import onnxruntime: no native telemetry (cspine_desktop sets it too)
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import multiprocessing
import sys


def frozen_argv(argv: list[str]) -> list[str]:
    """Map the installed app's command line onto ``cspine``'s subcommands."""
    from cspine_desktop.cli import COMMANDS

    if "--self-test" in argv:
        i = argv.index("--self-test")
        return [*argv[:i], "self-test", *argv[i + 1 :]]
    commands = {"self-test", *COMMANDS}
    if any(a in commands for a in argv) or any(a in ("-h", "--help", "--version") for a in argv):
        return argv
    return [*argv, "gui"]  # double-click, or only global options such as --data-dir


def main() -> int:
    multiprocessing.freeze_support()
    if sys.stdout is None:  # a windowed build on Windows has no console
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    from cspine_desktop.cli import main as cli_main

    return cli_main(frozen_argv(sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
