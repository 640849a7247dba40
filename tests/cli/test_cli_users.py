"""``cspine users ...`` from a fresh data dir (real bcrypt cost, so kept to a few calls)."""

from __future__ import annotations

import io
import json

import pytest

from cspine_desktop.cli import main


def run(capsys, monkeypatch, argv, stdin=None):
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_users_lifecycle_from_a_fresh_data_dir(capsys, monkeypatch, tmp_path):
    data = ["--data-dir", str(tmp_path / "fresh")]
    code, out, _ = run(capsys, monkeypatch, [*data, "users", "list"])
    assert code == 0 and "No users yet" in out

    code, out, _ = run(
        capsys,
        monkeypatch,
        [*data, "users", "add", "Ana O'Neil", "--role", "admin", "--password-stdin"],
        "Admin-pass-123\n",
    )
    assert code == 0 and "Added admin 'Ana O'Neil'" in out

    code, _, err = run(
        capsys, monkeypatch, [*data, "users", "add", "bob", "--password-stdin"], "short\n"
    )
    assert code == 2 and "too short" in err and "Traceback" not in err

    code, _, err = run(
        capsys,
        monkeypatch,
        [*data, "users", "add", "bob", "--password-stdin"],
        "Aa1!" + "x" * 69 + "\n",
    )
    assert code == 2 and "too long" in err

    code, out, _ = run(capsys, monkeypatch, [*data, "users", "list", "--json"])
    (user,) = json.loads(out)
    assert user["name"] == "Ana O'Neil" and user["role"] == "admin"
    assert "password_hash" not in out and "$2b$" not in out

    code, _, err = run(capsys, monkeypatch, [*data, "users", "disable", "Ana O'Neil"])
    assert code == 2 and "last active administrator" in err
    code, _, err = run(capsys, monkeypatch, [*data, "users", "approve", "nobody"])
    assert code == 2 and "No user named" in err


def test_approve_disable_enable_reset(capsys, monkeypatch, _isolated_data_dir):
    from cspine_desktop.services import Services
    from cspine_desktop.settings import Settings

    settings = Settings.load()
    with Services.open(settings, start_jobs=False, bcrypt_rounds=4) as sv:
        sv.users.create_first_admin("root", "Admin-pass-123")
        sv.users.sign_up("rad", "Scanner-pass-91")

    assert run(capsys, monkeypatch, ["users", "approve", "rad"])[0] == 0
    assert run(capsys, monkeypatch, ["users", "disable", "rad"])[0] == 0
    code, out, _ = run(capsys, monkeypatch, ["users", "list"])
    assert "rad" in out and "disabled" in out
    assert run(capsys, monkeypatch, ["users", "enable", "rad"])[0] == 0
    code, out, _ = run(
        capsys,
        monkeypatch,
        ["users", "reset-password", "rad", "--password-stdin"],
        "Another-pass-77\n",
    )
    assert code == 0 and "reset" in out
    with Services.open(settings, start_jobs=False, bcrypt_rounds=4) as sv:
        assert sv.users.authenticate("rad", "Another-pass-77").status == "active"
        changes = [e.detail["change"] for e in sv.audit.query(action="user_changed")]
        assert changes == ["approve", "disable", "enable", "reset_password"]
        assert all(e.user_name.startswith("os:") for e in sv.audit.query(action="user_changed"))


def test_password_is_never_an_argument(capsys, monkeypatch):
    with pytest.raises(SystemExit):
        main(["users", "add", "x", "--password", "Admin-pass-123"])
    code, _, err = run(capsys, monkeypatch, ["users", "add", "x"], "")
    assert code == 2 and "--password-stdin" in err
