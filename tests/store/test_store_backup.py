"""Backup (online SQLite backup + files) and restore."""

from __future__ import annotations

import json
import sqlite3

import pytest

from cspine_desktop.errors import BackupError
from cspine_desktop.store import Store, backup, restore, verify_backup


def test_backup_and_restore_round_trip(store, add_study, tmp_path):
    keep = add_study(2, patient_id="KEEP")
    store.studies.write_artifact(keep.id, "r.pdf", "report", b"%PDF-1.4")
    store.audit.append("login", "110114", "E", "success", 0, user_name="ana")
    manifest = backup(store, tmp_path / "bk")
    assert manifest["studies"] == 1
    assert verify_backup(tmp_path / "bk")["schema_version"] == store.schema_version

    later = add_study(1, patient_id="LATER")  # after the backup
    store.studies.delete(keep.id)
    store.close()

    aside = restore(tmp_path / "bk", store.data_dir)
    back = Store.open(store.data_dir)
    try:
        assert [s.patient_id for s in back.studies.find()] == ["KEEP"]
        restored = back.studies.get(keep.id)
        assert [p.read_bytes() for p in restored.files()] == [
            p.read_bytes() for p in sorted((tmp_path / "bk" / "studies" / keep.id).rglob("*.dcm"))
        ]
        assert back.studies.artifacts(keep.id)[0].path.read_bytes() == b"%PDF-1.4"
        assert [e.user_name for e in back.audit.query()] == ["ana"]
        assert back.integrity_check() == "ok"
    finally:
        back.close()
    # the data replaced by the restore are kept, not deleted
    assert (aside / "cspine.sqlite3").is_file()
    assert (aside / "studies" / later.id).is_dir()


def test_backup_is_consistent_while_the_app_writes(store, add_study, tmp_path):
    for i in range(3):
        add_study(2, patient_id=f"P{i}")
    manifest = backup(store, tmp_path / "bk")
    conn = sqlite3.connect(tmp_path / "bk" / "cspine.sqlite3")
    ids = [r[0] for r in conn.execute("SELECT id FROM studies")]
    conn.close()
    assert len(ids) == manifest["studies"] == 3
    for sid in ids:
        assert len(list((tmp_path / "bk" / "studies" / sid / "files").rglob("*"))) >= 2


def test_backup_refuses_a_non_empty_destination_and_the_data_folder(store, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(BackupError, match="not an empty folder"):
        backup(store, tmp_path / "full")
    with pytest.raises(BackupError, match="outside the data folder"):
        backup(store, store.data_dir / "bk")


def test_damaged_or_foreign_backups_are_refused(store, add_study, tmp_path):
    rec = add_study(1)
    backup(store, tmp_path / "bk")
    victim = next((tmp_path / "bk" / "studies" / rec.id).rglob("*.dcm"))
    victim.write_bytes(b"tampered")
    with pytest.raises(BackupError, match=r"damaged|truncated"):
        verify_backup(tmp_path / "bk")
    with pytest.raises(BackupError, match="not a cspine backup"):
        verify_backup(tmp_path)
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(BackupError):
        restore(tmp_path / "odd", store.data_dir)
    assert store.studies.get(rec.id)  # nothing was touched
