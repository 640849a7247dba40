"""``cspine admin backup|restore|audit|check``."""

from __future__ import annotations

import csv
import io
import json

from cspine_desktop.cli import main
from cspine_desktop.cli.admin import parse_time
from cspine_desktop.services import Services
from cspine_desktop.settings import Settings


def _seed():
    settings = Settings.load()
    with Services.open(settings, start_jobs=False, bcrypt_rounds=4) as sv:
        sv.users.create_first_admin("ana", "Admin-pass-123")
        sv.users.authenticate("ana", "Admin-pass-123", address="10.0.0.4")
        with sv.studies.begin_import(user="ana") as imp:
            imp.add("a.dcm", b"abc")
            study = imp.commit(patient_id="PAT-1", study_uid="1.2.3")
        sv.studies.view(study.id, user="bob")
    return settings, study


def test_audit_text_csv_json_and_filters(capsys):
    _seed()
    assert main(["admin", "audit"]) == 0
    out = capsys.readouterr().out
    assert "login" in out and "from=10.0.0.4" in out and "patient=PAT-1" in out

    assert main(["admin", "audit", "--csv", "--user", "BOB"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["action"], r["user_name"], r["patient_id"]) for r in rows] == [
        ("study_viewed", "bob", "PAT-1")
    ]

    assert main(["admin", "audit", "--json", "--since", "1h"]) == 0
    events = json.loads(capsys.readouterr().out)
    assert {e["action"] for e in events} >= {"user_created", "login", "study_imported"}

    assert main(["admin", "audit", "--since", "2999-01-01"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "No audit events" in captured.err

    assert main(["admin", "audit", "--since", "yesterday-ish"]) == 2
    assert "Cannot read the time" in capsys.readouterr().err


def test_parse_time():
    assert parse_time("2024-05-01") == 1714521600.0
    assert parse_time("2024-05-01T02:00+02:00") == 1714521600.0
    assert parse_time("7d", now=1_000_000.0) == 1_000_000.0 - 7 * 86400
    assert parse_time("90m", now=10_000.0) == 10_000.0 - 5400


def test_backup_restore_from_the_command_line(capsys, tmp_path):
    settings, study = _seed()
    assert main(["admin", "backup", str(tmp_path / "bk")]) == 0
    assert "1 studies" in capsys.readouterr().out
    assert main(["admin", "backup", str(tmp_path / "bk")]) == 2  # exists: refused
    assert "not an empty folder" in capsys.readouterr().err

    with Services.open(settings, start_jobs=False) as sv:
        sv.studies.delete(study.id, user="ana")

    assert main(["admin", "restore", str(tmp_path / "bk")]) == 2  # no terminal, no --yes
    assert "--yes" in capsys.readouterr().err
    assert main(["admin", "restore", str(tmp_path / "bk"), "--yes"]) == 0
    assert "Restored 1 studies" in capsys.readouterr().out
    with Services.open(settings, start_jobs=False) as sv:
        assert sv.studies.get(study.id).files()[0].read_bytes() == b"abc"
        assert sv.audit.query(action="restore")[0].user_name.startswith("os:")
    assert main(["admin", "check"]) == 0
    assert "integrity: ok" in capsys.readouterr().out


def test_restore_is_refused_while_the_app_runs(capsys, tmp_path):
    settings, _ = _seed()
    with Services.open(settings, start_jobs=False) as sv:
        main(["admin", "backup", str(tmp_path / "bk")])
        assert main(["admin", "restore", str(tmp_path / "bk"), "--yes"]) == 2
        assert "stop it first" in capsys.readouterr().err
        assert sv.studies.find()  # untouched
