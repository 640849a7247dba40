"""The installed app's command line: no command starts the workstation, ``--self-test`` runs
the self-test, any ``cspine`` command passes through unchanged."""

from __future__ import annotations

import pytest
from installer_support import load_installer_module

entry = load_installer_module("cspine_entry")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["gui"]),
        (["--data-dir", "/d"], ["--data-dir", "/d", "gui"]),
        (["--self-test"], ["self-test"]),
        (["--self-test", "--json", "--strict"], ["self-test", "--json", "--strict"]),
        (["--data-dir", "/d", "--self-test"], ["--data-dir", "/d", "self-test"]),
        (["analyze", "study.zip"], ["analyze", "study.zip"]),
        (["users", "list"], ["users", "list"]),
        (["--version"], ["--version"]),
        (["-h"], ["-h"]),
    ],
)
def test_frozen_command_line(argv, expected):
    assert entry.frozen_argv(argv) == expected


def test_every_mapped_command_exists():
    from cspine_desktop.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"gui", "self-test", "analyze"} <= set(sub.choices)
