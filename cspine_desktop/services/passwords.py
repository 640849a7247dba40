"""Password policy and bcrypt hashing (pyca ``bcrypt``).

bcrypt reads at most 72 bytes of a password; longer passwords are REFUSED with a plain message
(never silently truncated, never pre-hashed). Cost (log2 rounds) comes from
``Settings.bcrypt_rounds`` (12 or more); a stored hash with a lower cost is upgraded at the next
successful login.
"""

from __future__ import annotations

from dataclasses import dataclass

import bcrypt

from ..errors import PasswordPolicyError

BCRYPT_MAX_BYTES = 72


@dataclass(frozen=True)
class PasswordPolicy:
    """``min_length`` characters; at least ``min_classes`` of lower/upper/digit/other unless
    the password is a passphrase of ``passphrase_length`` characters or more; never more than
    72 UTF-8 bytes; never containing the user name."""

    min_length: int = 10
    min_classes: int = 3
    passphrase_length: int = 16

    def check(self, password: str, user_name: str | None = None) -> None:
        """Raise :class:`PasswordPolicyError` with the reason when ``password`` is refused."""
        if not isinstance(password, str) or not password:
            raise PasswordPolicyError("A password is required.")
        n_bytes = len(password.encode("utf-8"))
        if n_bytes > BCRYPT_MAX_BYTES:
            raise PasswordPolicyError(
                f"The password is too long: {n_bytes} bytes in UTF-8, at most "
                f"{BCRYPT_MAX_BYTES} are allowed (accented letters and symbols count as 2–4 "
                "bytes each). Please choose a shorter one."
            )
        if len(password) < self.min_length:
            raise PasswordPolicyError(
                f"The password is too short: use at least {self.min_length} characters."
            )
        if password.strip() != password or "\x00" in password:
            raise PasswordPolicyError(
                "The password must not start or end with a space or contain a NUL character."
            )
        if user_name and len(user_name) >= 3 and user_name.lower() in password.lower():
            raise PasswordPolicyError("The password must not contain the user name.")
        if len(password) < self.passphrase_length and character_classes(password) < min(
            self.min_classes, 4
        ):
            raise PasswordPolicyError(
                f"The password is too simple: mix at least {self.min_classes} of lower-case "
                "letters, upper-case letters, digits and symbols, or use a passphrase of "
                f"{self.passphrase_length} characters or more."
            )


def character_classes(password: str) -> int:
    return sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )


def hash_password(password: str, rounds: int) -> str:
    """bcrypt hash (``$2b$<cost>$...``) of a password that already passed the policy's length
    rule. Raises :class:`PasswordPolicyError` for > 72 bytes, whatever the policy."""
    raw = password.encode("utf-8")
    if len(raw) > BCRYPT_MAX_BYTES:
        raise PasswordPolicyError(
            f"The password is too long: at most {BCRYPT_MAX_BYTES} bytes are allowed."
        )
    return bcrypt.hashpw(raw, bcrypt.gensalt(rounds=rounds)).decode("ascii")


def verify_password(password: str, password_hash: str) -> bool:
    """Constant-time bcrypt check; False (never an exception) for any mismatch or bad input."""
    raw = password.encode("utf-8") if isinstance(password, str) else b""
    try:
        if not raw or len(raw) > BCRYPT_MAX_BYTES:
            # still spend the time of one check so the answer time does not tell anything
            bcrypt.checkpw(b"x", password_hash.encode("ascii"))
            return False
        return bcrypt.checkpw(raw, password_hash.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return False


def hash_cost(password_hash: str) -> int:
    """The cost factor stored in a bcrypt hash (``$2b$12$...`` → 12)."""
    try:
        return int(password_hash.split("$")[2])
    except (IndexError, ValueError):
        return 0
