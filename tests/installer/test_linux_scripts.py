"""install.sh / uninstall.sh and the menu entry, on a fake unpacked bundle in a temporary HOME.

The fake bundle has the real layout (``cspine``, ``_internal/``, the scripts, ``share/``) laid
out by ``build.add_platform_files``; its ``cspine`` is a tiny shell script, so these tests run
in a second without a PyInstaller build.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from installer_support import INSTALLER, load_installer_module

build = load_installer_module("build")

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux install scripts")


@pytest.fixture
def unpacked(tmp_path, monkeypatch):
    app = tmp_path / "unpacked" / "cspine"
    (app / "_internal").mkdir(parents=True)
    (app / "cspine").write_text("#!/bin/sh\necho cspine 0.1.0\n")
    (app / "cspine").chmod(0o755)
    monkeypatch.setattr(build.sys, "platform", "linux")
    build.add_platform_files(app)
    return app


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


def sh(cmd, home, *args, check=True):
    env = {"HOME": str(home), "PATH": os.environ["PATH"]}
    return subprocess.run(
        [str(cmd), *args],
        env=env,
        capture_output=True,
        text=True,
        check=check,
        stdin=subprocess.DEVNULL,
    )


def test_menu_entry_is_complete():
    text = (INSTALLER / "linux" / "cspine.desktop").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "[Desktop Entry]"
    keys = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    assert keys["Type"] == "Application" and keys["Name"] == "cspine"
    assert keys["Exec"] == "@APPDIR@/cspine" and keys["Icon"] == "cspine"
    assert keys["Terminal"] == "false" and keys["Categories"].endswith(";")
    assert "not for diagnostic use" in keys["Comment"]


def test_install_then_uninstall_keeps_the_data(unpacked, home):
    out = sh(unpacked / "install.sh", home).stdout
    app = home / ".local" / "opt" / "cspine"
    desktop = home / ".local" / "share" / "applications" / "cspine.desktop"
    icon = home / ".local" / "share" / "icons" / "hicolor" / "256x256" / "apps" / "cspine.png"
    link = home / ".local" / "bin" / "cspine"
    assert f"cspine installed in {app}" in out
    assert (app / "cspine").is_file() and (app / "_internal").is_dir()
    assert f"Exec={app}/cspine" in desktop.read_text() and icon.is_file()
    assert sh(link, home).stdout.strip() == "cspine 0.1.0"
    assert unpacked.is_dir()  # the unpacked folder is copied, not moved

    data = home / ".local" / "share" / "cspine"
    data.mkdir(parents=True)
    (data / "cspine.sqlite3").write_text("db")
    out = sh(app / "uninstall.sh", home).stdout
    assert not app.exists() and not desktop.exists() and not icon.exists() and not link.exists()
    assert (data / "cspine.sqlite3").read_text() == "db"
    assert f"data is kept in {data}" in out


def test_uninstall_with_remove_data_deletes_data_cache_and_logs(unpacked, home):
    sh(unpacked / "install.sh", home)
    folders = [
        home / ".local" / "share" / "cspine",
        home / ".cache" / "cspine",
        home / ".local" / "state" / "cspine" / "log",
    ]
    for f in folders:
        f.mkdir(parents=True)
        (f / "x").write_text("x")
    other = home / ".local" / "share" / "other-app"
    other.mkdir()
    sh(home / ".local" / "opt" / "cspine" / "uninstall.sh", home, "--remove-data")
    assert not any(f.exists() for f in folders)
    assert other.is_dir()


def test_reinstall_replaces_an_installation_but_not_a_foreign_folder(unpacked, home):
    sh(unpacked / "install.sh", home)
    sh(unpacked / "install.sh", home)  # an update: replaced in place
    assert (home / ".local" / "opt" / "cspine" / "cspine").is_file()
    foreign = home / "elsewhere"
    foreign.mkdir()
    (foreign / "important.txt").write_text("keep")
    proc = sh(unpacked / "install.sh", home, f"--prefix={foreign}", check=False)
    assert proc.returncode == 2 and "not a cspine installation" in proc.stderr
    assert (foreign / "important.txt").read_text() == "keep"


def test_uninstall_refuses_an_unpacked_folder(unpacked, home):
    proc = sh(unpacked / "uninstall.sh", home, check=False)
    assert proc.returncode == 2 and "not an installed copy" in proc.stderr
    assert (unpacked / "cspine").is_file()
