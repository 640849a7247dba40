"""Password policy and bcrypt: > 72 bytes refused (never truncated), cost from Settings."""

from __future__ import annotations

import time

import pytest

from cspine_desktop.errors import PasswordPolicyError
from cspine_desktop.services.passwords import (
    PasswordPolicy,
    hash_cost,
    hash_password,
    verify_password,
)
from cspine_desktop.services.users import UserService

POLICY = PasswordPolicy(min_length=10)


@pytest.mark.parametrize(
    "password",
    [
        "A1b" + "x" * 70,  # 73 ASCII bytes
        "Aa1!" + "é" * 35,  # 39 characters, 74 UTF-8 bytes
        "🦴" * 19,  # 19 characters, 76 bytes
    ],
)
def test_passwords_longer_than_72_bytes_are_refused_with_a_message(password):
    with pytest.raises(PasswordPolicyError, match=r"too long: .* at most 72"):
        POLICY.check(password)
    with pytest.raises(PasswordPolicyError, match="at most 72"):
        hash_password(password, 4)


def test_72_bytes_exactly_is_accepted_and_every_byte_counts():
    password = "Aa1!" + "x" * 68
    assert len(password.encode()) == 72
    POLICY.check(password)
    h = hash_password(password, 4)
    assert verify_password(password, h)
    assert not verify_password(password[:-1] + "y", h)  # the 72nd byte matters


def test_a_longer_password_is_never_accepted_as_its_72_byte_prefix(make_services):
    sv = make_services(start_jobs=False)
    prefix = "Aa1!" + "x" * 68
    sv.users.add_user("ana", prefix, "radiologist")
    with pytest.raises(Exception) as info:
        sv.users.authenticate("ana", prefix + "tail")
    assert "Wrong user name or password" in str(info.value)


@pytest.mark.parametrize(
    "password, reason",
    [
        ("", "required"),
        ("Aa1!short", "too short"),
        ("alllowercaseletters1", None),  # 20 chars: a passphrase is fine
        ("abcdefghij", "too simple"),
        ("Abcdefghij", "too simple"),
        ("Abcdefghi1", None),
        (" Abcdefgh1!", "space"),
        ("Xanamaria1!", "user name"),
    ],
)
def test_policy(password, reason):
    if reason is None:
        POLICY.check(password, "anamaria")
    else:
        with pytest.raises(PasswordPolicyError, match=reason):
            POLICY.check(password, "anamaria")


def test_min_length_comes_from_settings(make_services):
    sv = make_services(start_jobs=False, password_min_length=14)
    with pytest.raises(PasswordPolicyError, match="at least 14"):
        sv.users.add_user("bob", "Abcdefgh1!xyz")


def test_default_cost_is_12_from_settings(settings, make_services):
    """The one test that pays the real cost: Settings → UserService → stored hash."""
    from cspine_desktop.services import AuditLog
    from cspine_desktop.store import Store

    store = Store.open(settings.data_dir)
    try:
        users = UserService(store, AuditLog(store), settings)  # no test override
        assert users.rounds == settings.bcrypt_rounds == 12
        t0 = time.perf_counter()
        users.add_user("cost", "Correct-horse-1")
        elapsed = time.perf_counter() - t0
        assert hash_cost(store.accounts.password_hash("cost")) == 12
        assert elapsed > 0.05  # cost 12 is slow on purpose (≈0.2–0.3 s here)
    finally:
        store.close()


def test_cheaper_hashes_are_upgraded_at_sign_in(settings, make_services):
    sv = make_services(start_jobs=False)  # test cost 4
    sv.users.add_user("old", "Cheap-hash-pass1")
    assert hash_cost(sv.store.accounts.password_hash("old")) == 4
    from cspine_desktop.services import AuditLog

    users = UserService(sv.store, AuditLog(sv.store), settings, rounds=5)
    users.authenticate("old", "Cheap-hash-pass1")
    assert hash_cost(sv.store.accounts.password_hash("old")) == 5
