"""Database basics: WAL, foreign keys, schema version and migrations, thread safety."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading

import pytest

from cspine_desktop.errors import StoreVersionError
from cspine_desktop.store import SCHEMA_VERSION, Store
from cspine_desktop.store.schema import MIGRATIONS, migrate


def test_new_store_is_wal_with_foreign_keys_and_current_schema(store):
    with store.db.read() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.schema_version == SCHEMA_VERSION
    assert store.integrity_check() == "ok"
    assert store.alone_at_open


def test_every_thread_gets_foreign_keys(store):
    seen = []

    def check():
        with store.db.read() as conn:
            seen.append(conn.execute("PRAGMA foreign_keys").fetchone()[0])

    t = threading.Thread(target=check)
    t.start()
    t.join()
    assert seen == [1]


def test_migrations_run_in_order_from_an_empty_file(tmp_path):
    conn = sqlite3.connect(tmp_path / "x.sqlite3", isolation_level=None)
    assert migrate(conn) == 0
    assert conn.execute("PRAGMA user_version").fetchone()[0] == max(MIGRATIONS)
    assert migrate(conn) == max(MIGRATIONS)  # idempotent
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"users", "api_tokens", "studies", "analyses", "artifacts", "audit_events"} <= tables
    conn.close()


def test_a_database_from_a_newer_version_is_refused(tmp_path):
    conn = sqlite3.connect(tmp_path / "cspine.sqlite3")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreVersionError, match="newer cspine"):
        Store.open(tmp_path)


def test_a_failed_write_rolls_back(store):
    with pytest.raises(RuntimeError), store.db.write() as conn:
        conn.execute(
            "INSERT INTO login_throttle (scope, key, failures, last_failure) "
            "VALUES ('account', 'x', 1, 0)"
        )
        raise RuntimeError("boom")
    assert store.accounts.throttle_get("account", "x") is None


def test_second_opener_knows_it_is_not_alone(store):
    other = Store.open(store.data_dir)
    try:
        assert not other.alone_at_open
    finally:
        other.close()


def test_audit_trail_refuses_update_and_delete(store):
    store.audit.append("login", "110114", "E", "success", 0, user_name="a")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("UPDATE audit_events SET user_name = 'b'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("DELETE FROM audit_events")
    assert [e.user_name for e in store.audit.query()] == ["a"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_data_folder_and_database_are_private(tmp_path):
    s = Store.open(tmp_path / "new")
    try:
        assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
        assert stat.S_IMODE(s.db_path.stat().st_mode) == 0o600
    finally:
        s.close()
