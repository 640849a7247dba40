"""Local user accounts, sign-in with lockout, API tokens, and the idle auto-lock policy.

Roles: ``admin`` (manages users, settings, server) and ``radiologist``. States: ``pending``
(signed up, waiting for an admin), ``active``, ``disabled``. Admin operations take an ``actor``:
the signed-in :class:`UserRecord` (must be an active admin) or ``None`` for the local command
line, whose user already owns the data folder.

Sign-in failures get ONE message whether the name exists or not; see
:mod:`~cspine_desktop.services.lockout` for the delay/lock rules. API tokens are
``secrets.token_urlsafe(32)`` strings shown once; only their SHA-256 is stored.
"""

from __future__ import annotations

import secrets
import time
import unicodedata
from collections.abc import Callable

from ..errors import (
    AccountLockedError,
    AuthenticationError,
    ConflictError,
    CspineInputError,
    NotFoundError,
    PermissionDeniedError,
)
from ..settings import Settings
from ..store import ROLES, Store, UserRecord
from .audit import AuditLog
from .autolock import AutoLock, IdlePolicy
from .lockout import LoginThrottle
from .passwords import PasswordPolicy, hash_cost, hash_password, verify_password
from .signups import SignupLimiter
from .tokens import IssuedToken, TokenOps, token_hash

__all__ = ["AutoLock", "IdlePolicy", "IssuedToken", "PasswordPolicy", "UserService"]

BAD_LOGIN = "Wrong user name or password."
MAX_NAME_LENGTH = 64


def check_user_name(name: str) -> str:
    """Normalise (NFC, trimmed) and validate a user name; any script, quotes allowed."""
    if not isinstance(name, str):
        raise CspineInputError("A user name is required.")
    name = unicodedata.normalize("NFC", name).strip()
    if not name:
        raise CspineInputError("A user name is required.")
    if len(name) > MAX_NAME_LENGTH:
        raise CspineInputError(f"The user name is longer than {MAX_NAME_LENGTH} characters.")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise CspineInputError("The user name contains control characters.")
    return name


class UserService(TokenOps):
    """Accounts and authentication. ``rounds`` overrides ``settings.bcrypt_rounds`` and exists
    for tests only (production code never passes it); ``clock`` gives epoch seconds."""

    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        rounds: int | None = None,
        policy: PasswordPolicy | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        self.settings = settings
        self.clock = clock
        self.rounds = settings.bcrypt_rounds if rounds is None else int(rounds)
        self.policy = policy or PasswordPolicy(min_length=settings.password_min_length)
        self.throttle = LoginThrottle(
            store.accounts,
            max_failures=settings.max_failed_logins,
            lockout_s=settings.lockout_minutes * 60.0,
            clock=clock,
        )
        self._dummy_hash: str | None = None
        self.signups = SignupLimiter(audit, clock)
        # who the audit trail names for admin operations with actor=None (the command line
        # sets its operating-system account, e.g. "os:alice")
        self.local_actor: str | None = None

    def _actor_name(self, actor: UserRecord | None) -> str | None:
        return actor.name if actor is not None else self.local_actor

    # ------------------------------------------------------------------ first run
    def first_run(self) -> bool:
        """True when no account exists at all (the GUI then asks for an admin account)."""
        return self.store.accounts.count_users() == 0

    def needs_admin(self) -> bool:
        """True when no active admin exists (first run, or only pending sign-ups)."""
        return self.store.accounts.count_users(role="admin", status="active") == 0

    def create_first_admin(
        self, name: str, password: str, full_name: str = "", address: str | None = None
    ) -> UserRecord:
        """Create the first active admin; refused once an active admin exists."""
        if not self.needs_admin():
            raise PermissionDeniedError("An administrator account already exists.")
        return self._create(name, password, "admin", "active", full_name, None, address)

    # ------------------------------------------------------------------ accounts
    def add_user(
        self,
        name: str,
        password: str,
        role: str = "radiologist",
        *,
        actor: UserRecord | None = None,
        full_name: str = "",
        address: str | None = None,
    ) -> UserRecord:
        """Create an active account (admin only)."""
        self._require_admin(actor)
        return self._create(name, password, role, "active", full_name, actor, address)

    def sign_up(
        self, name: str, password: str, full_name: str = "", address: str | None = None
    ) -> UserRecord | None:
        """A sign-up request: a pending radiologist account an admin must approve.

        The answer must not tell which names exist: a taken name gets the same outcome as a
        new one (None instead of the record, which only the audit trail shows) after the same
        work (a bcrypt hash). A remote address may ask only so often (:mod:`.signups`; 429
        :class:`AccountLockedError` beyond)."""
        clean = check_user_name(name)
        self.policy.check(password, clean)
        self.signups.count(address)
        if self.store.accounts.get_user(clean) is not None:
            hash_password(password, self.rounds)  # the same time as a real request
            self._name_taken(clean, address)
            return None
        try:
            user = self._create(name, password, "radiologist", "pending", full_name, None, address)
        except ConflictError:  # a concurrent request for the same name
            self._name_taken(clean, address)
            return None
        self.audit.record("signup_requested", user=user, address=address)
        return user

    def _name_taken(self, name: str, address: str | None) -> None:
        """A sign-up for a taken name: recorded in the audit trail only, answered as any other."""
        self.audit.record(
            "signup_requested",
            outcome="failure",
            user=name,
            address=address,
            detail={"reason": "name_taken"},
        )

    def _create(self, name, password, role, status, full_name, actor, address) -> UserRecord:
        name = check_user_name(name)
        if role not in ROLES:
            raise CspineInputError(f"Unknown role '{role}'; choose admin or radiologist.")
        self.policy.check(password, name)
        if self.store.accounts.get_user(name) is not None:
            raise ConflictError(f"A user named '{name}' already exists.")
        pw_hash = hash_password(password, self.rounds)
        try:
            user = self.store.accounts.insert_user(name, role, status, pw_hash, full_name)
        except Exception as exc:  # a concurrent insert of the same name
            if "UNIQUE" in str(exc):
                raise ConflictError(f"A user named '{name}' already exists.") from None
            raise
        self.audit.record(
            "user_created",
            user=self._actor_name(actor),
            address=address,
            detail={"target": user.name, "role": role, "status": status},
        )
        return user

    def get(self, name: str) -> UserRecord:
        user = self.store.accounts.get_user(check_user_name(name))
        if user is None:
            raise NotFoundError(f"No user named '{name}'.")
        return user

    def list_users(self) -> list[UserRecord]:
        return self.store.accounts.list_users()

    def approve(
        self, name: str, *, actor: UserRecord | None = None, role: str | None = None
    ) -> UserRecord:
        self._require_admin(actor)
        user = self.get(name)
        if user.status != "pending":
            raise ConflictError(f"User '{user.name}' is not waiting for approval.")
        return self._change(user, actor, "approve", status="active", role=role or user.role)

    def disable(self, name: str, *, actor: UserRecord | None = None) -> UserRecord:
        """Disable an account and revoke its tokens (the last active admin cannot be)."""
        self._require_admin(actor)
        user = self.get(name)
        self._keep_one_admin(user)
        changed = self._change(user, actor, "disable", status="disabled")
        self.store.accounts.revoke_tokens(user_id=user.id)
        return changed

    def enable(self, name: str, *, actor: UserRecord | None = None) -> UserRecord:
        self._require_admin(actor)
        return self._change(self.get(name), actor, "enable", status="active")

    def set_role(self, name: str, role: str, *, actor: UserRecord | None = None) -> UserRecord:
        self._require_admin(actor)
        if role not in ROLES:
            raise CspineInputError(f"Unknown role '{role}'; choose admin or radiologist.")
        user = self.get(name)
        if role != "admin":
            self._keep_one_admin(user)
        return self._change(user, actor, "set_role", role=role)

    def reset_password(
        self, name: str, new_password: str, *, actor: UserRecord | None = None
    ) -> UserRecord:
        """Admin sets a new password; the user's tokens are revoked and lockout cleared."""
        self._require_admin(actor)
        user = self.get(name)
        self.policy.check(new_password, user.name)
        changed = self._change(
            user, actor, "reset_password", password_hash=hash_password(new_password, self.rounds)
        )
        self.store.accounts.revoke_tokens(user_id=user.id)
        self.throttle.success(user.name)
        return changed

    def change_password(
        self, name: str, old_password: str, new_password: str, address: str | None = None
    ) -> UserRecord:
        """Self-service change: needs the current password (and counts failures)."""
        user = self.authenticate(name, old_password, address=address, audit_success=False)
        self.policy.check(new_password, user.name)
        changed = self.store.accounts.update_user(
            user.id, password_hash=hash_password(new_password, self.rounds)
        )
        self.audit.record("password_changed", user=user, address=address)
        return changed

    def _change(self, user: UserRecord, actor: UserRecord | None, what: str, **fields):
        changed = self.store.accounts.update_user(user.id, **fields)
        self.audit.record(
            "user_changed",
            user=self._actor_name(actor),
            detail={
                "target": user.name,
                "change": what,
                "status": changed.status,
                "role": changed.role,
            },
        )
        return changed

    def _require_admin(self, actor: UserRecord | None) -> None:
        if actor is None:
            return
        current = self.store.accounts.get_user_by_id(actor.id)
        if current is None or not current.is_active or not current.is_admin:
            raise PermissionDeniedError("Only an administrator may manage user accounts.")

    def _keep_one_admin(self, user: UserRecord) -> None:
        if (
            user.is_admin
            and user.is_active
            and self.store.accounts.count_users(role="admin", status="active") <= 1
        ):
            raise ConflictError("This is the last active administrator; it must stay.")

    # ------------------------------------------------------------------ sign-in
    def authenticate(
        self,
        name: str,
        password: str,
        address: str | None = None,
        *,
        audit_success: bool = True,
    ) -> UserRecord:
        """Check a password. Raises :class:`AuthenticationError` (one message for unknown
        user and wrong password) or :class:`AccountLockedError` (with ``retry_after_s``)."""
        typed = name if isinstance(name, str) else ""
        try:  # atomic: counted as a failure before the password is checked
            reserved = self.throttle.reserve(typed, address)
        except AccountLockedError as err:
            self.audit.record(
                "login",
                outcome="failure",
                user=typed,
                address=address,
                detail={"reason": "locked", "retry_after_s": round(err.retry_after_s)},
            )
            raise
        try:
            clean = check_user_name(typed)
        except CspineInputError:
            clean = None
        stored = self.store.accounts.password_hash(clean) if clean else None
        ok = verify_password(password, stored or self._dummy())
        user = self.store.accounts.get_user(clean) if (ok and stored and clean) else None
        if user is None:
            return self._failed(typed, address, reserved)
        self.throttle.success(typed)  # the right password: not a failure after all
        if user.status != "active":
            self.audit.record(
                "login",
                outcome="failure",
                user=user,
                address=address,
                detail={"reason": user.status},
            )
            if user.status == "pending":
                raise AuthenticationError(
                    "Your account is waiting for an administrator's approval."
                )
            raise AuthenticationError("This account is disabled; ask an administrator.")
        assert stored is not None  # a user is only found when its stored hash matched
        self.throttle.success(user.name)
        fields: dict[str, object] = {"last_login_at": self.clock()}
        if hash_cost(stored) < self.rounds:  # upgrade an old, cheaper hash
            fields["password_hash"] = hash_password(password, self.rounds)
        user = self.store.accounts.update_user(user.id, **fields)
        if audit_success:
            self.audit.record("login", user=user, address=address)
        return user

    def _failed(self, typed: str, address: str | None, reserved) -> UserRecord:
        """A wrong password; ``reserved`` is what :meth:`LoginThrottle.reserve` counted."""
        state = self.throttle.failed(address, reserved)
        self.audit.record(
            "login",
            outcome="failure",
            user=typed,
            address=address,
            detail={"reason": "bad_credentials", "failures": state.failures},
        )
        if self.throttle.is_lock(state):
            self.audit.record(
                "account_locked",
                outcome="failure",
                user=typed,
                address=address,
                detail={"minutes": self.settings.lockout_minutes},
            )
            wait = state.locked_until - self.clock()
            raise AccountLockedError(
                f"{BAD_LOGIN} Too many failed attempts: sign-in is locked for "
                f"{round(wait / 60)} minutes.",
                retry_after_s=wait,
            )
        raise AuthenticationError(BAD_LOGIN)

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = hash_password(secrets.token_urlsafe(16), self.rounds)
        return self._dummy_hash

    def logout(self, user: UserRecord, address: str | None = None, token: str | None = None):
        """Record the sign-out; revoke the presented API token, if any."""
        if token:
            rec = self.store.accounts.token_by_hash(token_hash(token))
            if rec is not None and rec.user_id == user.id:
                self.store.accounts.revoke_tokens(token_id=rec.id)
        self.audit.record("logout", user=user, address=address)

    def session_locked(self, user: UserRecord, address: str | None = None) -> None:
        """Record that a session was locked (idle or by the user)."""
        self.audit.record("session_locked", user=user, address=address)

    def unlock_session(self, name: str, password: str, address: str | None = None) -> UserRecord:
        """Re-authenticate to unlock a locked session (same checks and throttling as sign-in)."""
        user = self.authenticate(name, password, address, audit_success=False)
        self.audit.record("session_unlocked", user=user, address=address)
        return user

    def autolock(self, clock: Callable[[], float] = time.monotonic) -> AutoLock:
        """A fresh idle policy from ``Settings.autolock_minutes``."""
        return AutoLock.from_minutes(self.settings.autolock_minutes, clock)
