"""API tokens: random, shown once, stored as SHA-256, expiring, revocable, scoped to a user.

A token is ``"csp_" + secrets.token_urlsafe(32)`` (256 random bits). Only its SHA-256 hex digest
is stored, so a copy of the database does not give access. Tokens expire after
``Settings.token_ttl_hours``; disabling a user or resetting their password revokes all of theirs.
:class:`TokenOps` is mixed into :class:`~cspine_desktop.services.users.UserService`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import AuthenticationError, CspineInputError, NotFoundError, PermissionDeniedError
from ..store import Store, TokenRecord, UserRecord

if TYPE_CHECKING:
    from ..settings import Settings
    from .audit import AuditLog

BAD_TOKEN = "The access token is invalid, expired or revoked; please sign in again."
TOKEN_PREFIX = "csp_"


@dataclass(frozen=True)
class IssuedToken:
    """``token`` is the secret to hand to the client ONCE; ``record`` is what is stored."""

    token: str
    record: TokenRecord


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenOps:
    """Token methods of UserService (uses its ``store``, ``audit``, ``settings``, ``clock``)."""

    # provided by UserService
    store: Store
    audit: AuditLog
    settings: Settings
    clock: Callable[[], float]

    if TYPE_CHECKING:

        def _require_admin(self, actor: UserRecord | None) -> None: ...

        def _actor_name(self, actor: UserRecord | None) -> str | None: ...

    # ------------------------------------------------------------------ API tokens
    def issue_token(
        self,
        user: UserRecord,
        label: str = "",
        ttl_hours: float | None = None,
        address: str | None = None,
    ) -> IssuedToken:
        """A new token for an active user, valid ``ttl_hours`` (default
        ``Settings.token_ttl_hours``)."""
        current = self.store.accounts.get_user_by_id(user.id)
        if current is None or not current.is_active:
            raise PermissionDeniedError("Tokens can only be issued to active accounts.")
        ttl = self.settings.token_ttl_hours if ttl_hours is None else float(ttl_hours)
        if ttl <= 0:
            raise CspineInputError("A token must be valid for a positive number of hours.")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = self.store.accounts.insert_token(
            current.id, token_hash(token), label, self.clock() + ttl * 3600.0
        )
        self.audit.record(
            "token_issued",
            user=current,
            address=address,
            detail={"token_id": token_id, "label": label, "ttl_hours": ttl},
        )
        record = self.store.accounts.get_token(token_id)
        assert record is not None  # inserted just above
        return IssuedToken(token, record)

    def verify_token(self, token: str, address: str | None = None) -> UserRecord:
        """The active user a token belongs to; :class:`AuthenticationError` otherwise."""
        rec = None
        if isinstance(token, str) and token.startswith(TOKEN_PREFIX) and len(token) < 200:
            rec = self.store.accounts.token_by_hash(token_hash(token))
        now = self.clock()
        user = self.store.accounts.get_user_by_id(rec.user_id) if rec else None
        if rec is None or not rec.is_valid(now) or user is None or not user.is_active:
            self.audit.record(
                "login",
                outcome="failure",
                address=address,
                user=user.name if user else None,
                detail={"method": "token", "reason": "invalid"},
            )
            raise AuthenticationError(BAD_TOKEN)
        self.store.accounts.touch_token(rec.id)
        return user

    def list_tokens(self, user: UserRecord | None = None) -> list[TokenRecord]:
        return self.store.accounts.list_tokens(None if user is None else user.id)

    def revoke_token(
        self, token_id: int, *, actor: UserRecord | None = None, address: str | None = None
    ) -> None:
        """Revoke one token: its owner or an admin may (``actor=None``: the local CLI)."""
        rec = self.store.accounts.get_token(token_id)
        if rec is None:
            raise NotFoundError(f"No token with id {token_id}.")
        if actor is not None and actor.id != rec.user_id:
            self._require_admin(actor)
        self.store.accounts.revoke_tokens(token_id=token_id)
        self.audit.record(
            "token_revoked",
            user=self._actor_name(actor),
            address=address,
            detail={"token_id": token_id, "owner": rec.user_name},
        )
