"""Sign-in locks as the workstation's admin screen and sign-in dialog see them: how long an
account stays locked, and lifting a lock (what ``cspine users unlock`` does), audited.

Built only on the users service's public parts; the account rules themselves live there.
"""

from __future__ import annotations

from ..errors import AccountLockedError, PermissionDeniedError
from ..store import UserRecord


def lock_remaining(users, name: str, address: str | None = None) -> float:
    """Seconds until ``name`` may try to sign in again (0 when it may now). Reads the store:
    call it off the GUI thread."""
    try:
        users.throttle.check(name, address)
    except AccountLockedError as err:
        return float(err.retry_after_s)
    return 0.0


def unlock_account(users, name: str, *, actor: UserRecord) -> UserRecord:
    """Clear the failed-sign-in lock of ``name`` (admin only) and audit it."""
    current = users.get(actor.name)
    if not (current.is_admin and current.is_active):
        raise PermissionDeniedError("Only an administrator may manage user accounts.")
    user = users.get(name)
    users.throttle.success(user.name)
    users.audit.record(
        "user_changed",
        user=actor.name,
        detail={
            "target": user.name,
            "change": "unlocked",
            "status": user.status,
            "role": user.role,
        },
    )
    return user
