"""Accounts, sign-in lockout (fake clock), API tokens, first run and permissions."""

from __future__ import annotations

import pytest

from cspine_desktop.errors import (
    AccountLockedError,
    AuthenticationError,
    ConflictError,
    CspineInputError,
    NotFoundError,
    PermissionDeniedError,
)

PW = "Correct-horse-1"


@pytest.fixture
def users(make_services, clock):
    return make_services(start_jobs=False, clock=clock).users


def _fail(users, name, address=None, password="Wrong-pass-123"):
    with pytest.raises(AuthenticationError) as info:
        users.authenticate(name, password, address=address)
    return info.value


# ---------------------------------------------------------------------- first run and roles
def test_first_run_then_first_admin(users):
    assert users.first_run() and users.needs_admin()
    admin = users.create_first_admin("root", PW)
    assert admin.role == "admin" and admin.status == "active"
    assert not users.first_run() and not users.needs_admin()
    with pytest.raises(PermissionDeniedError):
        users.create_first_admin("second", PW)


def test_sign_up_is_pending_until_an_admin_approves(users):
    admin = users.create_first_admin("root", PW)
    pending = users.sign_up("newbie", PW, full_name="New Radiologist", address="10.1.2.3")
    assert pending.status == "pending" and pending.role == "radiologist"
    with pytest.raises(AuthenticationError, match="waiting for an administrator"):
        users.authenticate("newbie", PW)
    radiologist = users.add_user("rad", PW, actor=admin)
    with pytest.raises(PermissionDeniedError):
        users.approve("newbie", actor=radiologist)
    assert users.approve("newbie", actor=admin).status == "active"
    assert users.authenticate("newbie", PW).name == "newbie"
    with pytest.raises(ConflictError):
        users.approve("newbie", actor=admin)


def test_only_admins_manage_users_and_the_last_admin_stays(users):
    admin = users.create_first_admin("root", PW)
    rad = users.add_user("rad", PW, actor=admin)
    for call in (
        lambda: users.add_user("x", PW, actor=rad),
        lambda: users.disable("root", actor=rad),
        lambda: users.set_role("rad", "admin", actor=rad),
        lambda: users.reset_password("root", "Other-pass-99", actor=rad),
    ):
        with pytest.raises(PermissionDeniedError):
            call()
    with pytest.raises(ConflictError, match="last active administrator"):
        users.disable("root", actor=admin)
    with pytest.raises(ConflictError):
        users.set_role("root", "radiologist", actor=admin)
    users.set_role("rad", "admin", actor=admin)
    assert users.disable("root", actor=admin).status == "disabled"
    with pytest.raises(AuthenticationError, match="disabled"):
        users.authenticate("root", PW)


def test_names_are_unique_regardless_of_case_and_validated(users):
    users.add_user("Ana", PW)
    with pytest.raises(ConflictError):
        users.add_user("ana", PW)
    assert users.authenticate("ANA", PW).name == "Ana"
    for bad in ("", "   ", "x" * 65, "tab\tname", "nul\x00"):
        with pytest.raises(CspineInputError):
            users.add_user(bad, PW)


@pytest.mark.parametrize(
    "name",
    ["O'Brien", 'Robert"); DROP TABLE users;--', "Müller", "山田太郎", "a%_\\b", "🦴 bone"],
)
def test_hostile_user_names_round_trip(users, name):
    users.add_user(name, PW)
    assert users.get(name).name == name
    assert users.authenticate(name, PW).name == name
    assert [u.name for u in users.list_users()] == [name]
    (event,) = [e for e in users.audit.query(action="login")]
    assert event.user_name == name


# ---------------------------------------------------------------------- sign-in failures
def test_unknown_user_and_wrong_password_get_the_same_message(users):
    users.add_user("ana", PW)
    a = _fail(users, "ana")
    b = _fail(users, "nobody-here")
    assert type(a) is type(b) is AuthenticationError
    assert str(a) == str(b) == "Wrong user name or password."


def test_growing_delay_then_lock_for_lockout_minutes(users, clock):
    users.add_user("ana", PW)
    delays = []
    for _ in range(4):
        _fail(users, "ana")
        with pytest.raises(AccountLockedError) as info:
            users.authenticate("ana", PW)  # even the right password waits
        delays.append(info.value.retry_after_s)
        clock.advance(info.value.retry_after_s)
    assert delays == [1, 2, 4, 8]
    with pytest.raises(AccountLockedError, match="locked for 15 minutes") as info:
        users.authenticate("ana", "Wrong-pass-123")  # 5th failure locks
    assert info.value.retry_after_s == pytest.approx(15 * 60)
    clock.advance(15 * 60 - 1)
    with pytest.raises(AccountLockedError, match="try again in 1 second"):
        users.authenticate("ana", PW)
    clock.advance(1)
    assert users.authenticate("ana", PW).name == "ana"
    # success clears the account counter
    _fail(users, "ana")
    clock.advance(1)
    assert users.authenticate("ana", PW).name == "ana"
    assert users.audit.query(action="account_locked")


def test_unknown_names_are_throttled_like_real_ones(users, clock):
    for _ in range(5):
        clock.advance(60)
        last = _fail(users, "ghost")
    assert isinstance(last, AccountLockedError)


def test_lockout_is_per_remote_address_too(users, clock):
    for name in ("a1", "a2", "a3", "a4", "a5", "a6"):
        users.add_user(name, PW)
    # password spraying: one failure per account from one address
    for name in ("a1", "a2", "a3", "a4"):
        _fail(users, name, address="203.0.113.9")
        clock.advance(30)
    last = _fail(users, "a5", address="203.0.113.9")
    assert isinstance(last, AccountLockedError)
    with pytest.raises(AccountLockedError):
        users.authenticate("a6", PW, address="203.0.113.9")  # the address is locked
    assert users.authenticate("a6", PW, address="198.51.100.7").name == "a6"
    assert users.authenticate("a6", PW).name == "a6"  # the workstation itself is not held
    # a success from the locked address does not reset its counter
    clock.advance(15 * 60)
    users.authenticate("a6", PW, address="203.0.113.9")
    failures = users.store.accounts.throttle_get("address", "203.0.113.9")[0]
    assert failures == 5


def test_failures_age_out(users, clock):
    users.add_user("ana", PW)
    for _ in range(4):
        _fail(users, "ana")
        clock.advance(20)
    clock.advance(15 * 60)  # long after the last failure: counting restarts
    err = _fail(users, "ana")
    assert not isinstance(err, AccountLockedError)
    assert users.store.accounts.throttle_get("account", "ana")[0] == 1


def test_failed_logins_are_audited_without_secrets(users):
    users.add_user("ana", PW)
    _fail(users, "ana", address="10.0.0.5", password="Secret-typo-77")
    (ev,) = users.audit.query(action="login", outcome="failure")
    assert ev.user_name == "ana" and ev.address == "10.0.0.5" and ev.outcome_code == 4
    raw = str(users.store.db.query("SELECT * FROM audit_events"))
    assert "Secret-typo-77" not in raw and "$2b$" not in raw


def test_change_password_needs_the_old_one(users, clock):
    users.add_user("ana", PW)
    with pytest.raises(AuthenticationError):
        users.change_password("ana", "Not-the-pass-1", "Brand-new-pass-2")
    clock.advance(1)
    users.change_password("ana", PW, "Brand-new-pass-2")
    assert users.authenticate("ana", "Brand-new-pass-2")
    assert str(_fail(users, "ana", password=PW)) == "Wrong user name or password."


# ---------------------------------------------------------------------- tokens
def test_tokens_are_random_hashed_expiring_and_revocable(users, clock):
    ana = users.add_user("ana", PW)
    issued = users.issue_token(ana, label="scanner")
    other = users.issue_token(ana)
    assert issued.token != other.token and len(issued.token) > 40
    stored = str(users.store.db.query("SELECT * FROM api_tokens"))
    assert issued.token not in stored  # only the hash is stored
    assert users.verify_token(issued.token).name == "ana"
    assert issued.record.expires_at == pytest.approx(clock() + 12 * 3600)

    clock.advance(12 * 3600 - 1)
    assert users.verify_token(issued.token).name == "ana"
    clock.advance(1)
    with pytest.raises(AuthenticationError, match="expired"):
        users.verify_token(issued.token)

    users.revoke_token(other.record.id, actor=ana)
    with pytest.raises(AuthenticationError):
        users.verify_token(other.token)
    with pytest.raises(AuthenticationError):
        users.verify_token("csp_" + "A" * 43)
    with pytest.raises(AuthenticationError):
        users.verify_token("")


def test_tokens_die_with_disable_and_password_reset(users):
    admin = users.create_first_admin("root", PW)
    ana = users.add_user("ana", PW, actor=admin)
    t1 = users.issue_token(ana, ttl_hours=1)
    users.reset_password("ana", "Fresh-pass-456", actor=admin)
    with pytest.raises(AuthenticationError):
        users.verify_token(t1.token)
    t2 = users.issue_token(ana)
    users.disable("ana", actor=admin)
    with pytest.raises(AuthenticationError):
        users.verify_token(t2.token)
    users.enable("ana", actor=admin)
    with pytest.raises(AuthenticationError):  # re-enabling does not revive old tokens
        users.verify_token(t2.token)
    with pytest.raises(PermissionDeniedError):
        users.revoke_token(users.issue_token(admin).record.id, actor=users.get("ana"))
    with pytest.raises(NotFoundError):
        users.revoke_token(99999)


def test_logout_revokes_the_presented_token(users):
    ana = users.add_user("ana", PW)
    t = users.issue_token(ana)
    users.logout(ana, address="10.0.0.9", token=t.token)
    with pytest.raises(AuthenticationError):
        users.verify_token(t.token)
    assert users.audit.query(action="logout")[0].address == "10.0.0.9"
