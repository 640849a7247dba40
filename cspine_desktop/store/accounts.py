"""Tables for accounts: users, API tokens (hashed) and the failed-login throttle.

Policy (who may do what, password rules, lockout arithmetic) lives in
``cspine_desktop.services.users``; this module only stores and fetches.
"""

from __future__ import annotations

from collections.abc import Callable

from .db import Database
from .records import TokenRecord, UserRecord, row_token, row_user

_TOKEN_SELECT = (
    "SELECT t.*, u.name AS user_name FROM api_tokens t JOIN users u ON u.id = t.user_id "
)


class AccountTables:
    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    # ------------------------------------------------------------------ users
    def count_users(self, role: str | None = None, status: str | None = None) -> int:
        sql = (
            "SELECT COUNT(*) FROM users WHERE (? IS NULL OR role = ?) AND (? IS NULL OR status = ?)"
        )
        return self.db.query_count(sql, (role, role, status, status))

    def insert_user(
        self, name: str, role: str, status: str, password_hash: str, full_name: str = ""
    ) -> UserRecord:
        now = self.clock()
        with self.db.write() as conn:
            cur = conn.execute(
                "INSERT INTO users (name, full_name, role, status, password_hash, created_at, "
                "updated_at, password_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, full_name, role, status, password_hash, now, now, now),
            )
            row = conn.execute("SELECT * FROM users WHERE id = ?", (cur.lastrowid,)).fetchone()
        return row_user(row)

    def get_user(self, name: str) -> UserRecord | None:
        row = self.db.query_one("SELECT * FROM users WHERE name = ?", (name,))
        return None if row is None else row_user(row)

    def get_user_by_id(self, user_id: int) -> UserRecord | None:
        row = self.db.query_one("SELECT * FROM users WHERE id = ?", (user_id,))
        return None if row is None else row_user(row)

    def password_hash(self, name: str) -> str | None:
        row = self.db.query_one("SELECT password_hash FROM users WHERE name = ?", (name,))
        return None if row is None else row["password_hash"]

    def list_users(self) -> list[UserRecord]:
        return [row_user(r) for r in self.db.query("SELECT * FROM users ORDER BY name")]

    def update_user(self, user_id: int, **fields: object) -> UserRecord:
        """Update whitelisted columns (status, role, full_name, password_hash, last_login_at)."""
        allowed = {"status", "role", "full_name", "password_hash", "last_login_at"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"not updatable: {sorted(bad)}")
        now = self.clock()
        assignments = [f"{col} = ?" for col in fields]  # column names from the whitelist
        values = list(fields.values())
        if "password_hash" in fields:
            assignments.append("password_changed_at = ?")
            values.append(now)
        assignments.append("updated_at = ?")
        values.append(now)
        with self.db.write() as conn:
            conn.execute(
                f"UPDATE users SET {', '.join(assignments)} WHERE id = ?",  # noqa: S608
                (*values, user_id),
            )
            row = conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        return row_user(row)

    # ------------------------------------------------------------------ tokens
    def insert_token(self, user_id: int, token_hash: str, label: str, expires_at: float) -> int:
        with self.db.write() as conn:
            cur = conn.execute(
                "INSERT INTO api_tokens (user_id, token_hash, label, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (user_id, token_hash, label, self.clock(), expires_at),
            )
            assert cur.lastrowid is not None  # set by every INSERT
            return cur.lastrowid

    def get_token(self, token_id: int) -> TokenRecord | None:
        row = self.db.query_one(_TOKEN_SELECT + "WHERE t.id = ?", (token_id,))
        return None if row is None else row_token(row)

    def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        row = self.db.query_one(_TOKEN_SELECT + "WHERE t.token_hash = ?", (token_hash,))
        return None if row is None else row_token(row)

    def list_tokens(self, user_id: int | None = None) -> list[TokenRecord]:
        rows = self.db.query(
            _TOKEN_SELECT + "WHERE (? IS NULL OR t.user_id = ?) ORDER BY t.created_at",
            (user_id, user_id),
        )
        return [row_token(r) for r in rows]

    def touch_token(self, token_id: int) -> None:
        self.db.execute(
            "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (self.clock(), token_id)
        )

    def revoke_tokens(self, *, token_id: int | None = None, user_id: int | None = None) -> int:
        """Revoke one token, or every live token of a user; returns how many were revoked."""
        if token_id is None and user_id is None:
            raise ValueError("token_id or user_id is required")
        return self.db.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE revoked_at IS NULL "
            "AND (? IS NULL OR id = ?) AND (? IS NULL OR user_id = ?)",
            (self.clock(), token_id, token_id, user_id, user_id),
        )

    # ------------------------------------------------------------------ login throttle
    def throttle_get(self, scope: str, key: str) -> tuple[int, float, float] | None:
        """(consecutive failures, time of last failure, locked until) or None."""
        row = self.db.query_one(
            "SELECT failures, last_failure, locked_until FROM login_throttle "
            "WHERE scope = ? AND key = ?",
            (scope, key),
        )
        return None if row is None else (row[0], row[1], row[2])

    def throttle_set(
        self, scope: str, key: str, failures: int, last_failure: float, locked_until: float
    ) -> None:
        self.db.execute(
            "INSERT INTO login_throttle (scope, key, failures, last_failure, locked_until) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(scope, key) DO UPDATE SET "
            "failures = excluded.failures, last_failure = excluded.last_failure, "
            "locked_until = excluded.locked_until",
            (scope, key, failures, last_failure, locked_until),
        )

    def throttle_update(
        self,
        keys: list[tuple[str, str]],
        update: Callable[
            [dict[tuple[str, str], tuple[int, float, float] | None]],
            dict[tuple[str, str], tuple[int, float, float] | None],
        ],
    ) -> None:
        """Read the throttle rows of ``keys``, let ``update`` decide, write its answer (None
        deletes a row), all in ONE write transaction: parallel sign-ins cannot interleave.
        ``update`` may raise to write nothing."""
        with self.db.write() as conn:
            states = {}
            for scope, key in keys:
                row = conn.execute(
                    "SELECT failures, last_failure, locked_until FROM login_throttle "
                    "WHERE scope = ? AND key = ?",
                    (scope, key),
                ).fetchone()
                states[(scope, key)] = None if row is None else (row[0], row[1], row[2])
            for (scope, key), state in update(states).items():
                if state is None:
                    conn.execute(
                        "DELETE FROM login_throttle WHERE scope = ? AND key = ?", (scope, key)
                    )
                    continue
                conn.execute(
                    "INSERT INTO login_throttle (scope, key, failures, last_failure, "
                    "locked_until) VALUES (?, ?, ?, ?, ?) ON CONFLICT(scope, key) DO UPDATE SET "
                    "failures = excluded.failures, last_failure = excluded.last_failure, "
                    "locked_until = excluded.locked_until",
                    (scope, key, *state),
                )

    def throttle_clear(self, scope: str, key: str) -> None:
        self.db.execute("DELETE FROM login_throttle WHERE scope = ? AND key = ?", (scope, key))
