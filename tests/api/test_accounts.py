"""Local accounts: SP 800-63B password rules, argon2id, throttling, TOTP for privileged roles."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from typing import Any

import pyotp
import pytest
from sqlalchemy import insert, select, update

from sharewise.domain.errors import AccessDeniedError, InvalidDataError, InvalidStateError, NotFoundError
from sharewise.services import accounts, audit, workflow
from sharewise.store.accounts_schema import accounts as accounts_table
from sharewise.store.accounts_schema import api_tokens
from sharewise.store.schema import user_roles
from sharewise.workflow.access import User
from tests.api.conftest import World

GOOD = "correct horse battery staple"


def test_short_common_and_repetitive_passwords_are_refused() -> None:
    assert accounts.password_problems("short")
    assert accounts.password_problems("password1")
    assert accounts.password_problems("aaaaaaaaaa")
    assert accounts.password_problems("12345678")


def test_long_passphrases_without_composition_rules_are_accepted() -> None:
    assert accounts.password_problems(GOOD) == []
    assert accounts.password_problems("x" * 10 + " plain lowercase words of any length " * 2) == []


def test_the_common_password_list_is_shipped_and_large() -> None:
    assert len(accounts.common_passwords()) > 10_000


def test_passwords_are_stored_as_argon2id(world: World) -> None:
    accounts.create_account(world.control, "administrator-a", "requester-a", GOOD)
    with world.control.store.transaction() as conn:
        stored = conn.execute(
            select(accounts_table.c.password_hash).where(accounts_table.c.user_id == "requester-a")
        ).scalar_one()
    assert stored.startswith("$argon2id$") and GOOD not in stored
    assert accounts.authenticate(world.control, "requester-a", GOOD, None).id == "requester-a"


def test_an_administrator_cannot_create_accounts_in_an_agency_that_has_its_own(world: World) -> None:
    accounts.create_account(world.control, "administrator-a", "administrator-b", GOOD)
    with pytest.raises(AccessDeniedError):
        accounts.create_account(world.control, "administrator-a", "requester-b", GOOD)


def test_a_weak_password_is_refused_at_creation(world: World) -> None:
    with pytest.raises(InvalidDataError):
        accounts.create_account(world.control, "administrator-a", "auditor-a", "password")


def test_privileged_users_need_their_totp_code(world: World) -> None:
    new = accounts.create_account(world.control, "administrator-a", "approver-a", GOOD)
    assert new.totp_secret
    with pytest.raises(AccessDeniedError):
        accounts.authenticate(world.control, "approver-a", GOOD, None)
    code = _code(new.totp_secret)
    assert accounts.authenticate(world.control, "approver-a", GOOD, code).id == "approver-a"


def test_a_one_time_code_is_accepted_once(world: World) -> None:
    """NIST SP 800-63B 5.1.4.2: a code seen on the wire, or over a shoulder, cannot sign in again."""
    _person(world, "approver-replay", {"approver"})
    secret = accounts.totp_secret(world.control, "approver-replay")
    assert secret
    code = _code(secret)
    assert accounts.authenticate(world.control, "approver-replay", GOOD, code).id == "approver-replay"
    with pytest.raises(AccessDeniedError):
        accounts.authenticate(world.control, "approver-replay", GOOD, code)
    earlier = pyotp.TOTP(secret).at((_last_steps[secret] - 1) * accounts.TOTP_PERIOD)
    with pytest.raises(AccessDeniedError):  # nor a code older than the one accepted
        accounts.authenticate(world.control, "approver-replay", GOOD, earlier)
    assert _account_row(world, "approver-replay").totp_last_step == _last_steps[secret]
    assert accounts.authenticate(world.control, "approver-replay", GOOD, _code(secret)).id == "approver-replay"


def test_repeated_failures_lock_the_account(world: World) -> None:
    accounts.create_account(world.control, "administrator-a", "data_steward-a", GOOD)
    for _ in range(accounts.MAX_FAILURES):
        with pytest.raises(AccessDeniedError):
            accounts.authenticate(world.control, "data_steward-a", "wrong password here", None)
    with pytest.raises(AccessDeniedError, match="locked"):
        accounts.authenticate(world.control, "data_steward-a", GOOD, None)


# Helpers for the enrolment and token tests: each test opens its own people, the world being shared.


def _person(world: World, user: str, roles: set[str], agency: str = "agency-a") -> str:
    admin = "administrator-a" if agency == "agency-a" else "administrator-b"
    workflow.add_user(world.control, user, user.title(), agency, roles, "administrator-a")
    if agency == "agency-b" and not _has_account(world, admin):
        accounts.create_account(world.control, "administrator-a", admin, GOOD)
    accounts.create_account(world.control, admin if agency == "agency-b" else "administrator-a", user, GOOD)
    return user


def _has_account(world: World, user: str) -> bool:
    try:
        accounts.has_totp(world.control, user)
    except NotFoundError:
        return False
    return True


def _grant(world: World, user: str, role: str) -> None:
    """A role granted after the account was created (straight in the directory: no service grants roles yet)."""
    with world.control.store.transaction() as conn:
        conn.execute(insert(user_roles).values(user_id=user, role=role))


def _account_row(world: World, user: str) -> Any:
    with world.control.store.transaction() as conn:
        return conn.execute(select(accounts_table).where(accounts_table.c.user_id == user)).one()


def _actions(world: World, subject: str) -> list[tuple[str, str, dict[str, Any]]]:
    records = accounts_log(world, subject)
    return [(str(r["action"]), str(r["outcome"]), json.loads(r["details"])) for r in records]


def accounts_log(world: World, subject: str) -> list[dict[str, Any]]:
    return list(reversed(audit.log(world.control, "auditor-a", "account", subject, limit=500)))


_last_steps: dict[str, int] = {}


def _code(secret: str) -> str:
    """A code of the secret that the service accepts now: each code is accepted once, so each call gives a later one."""
    current = int(time.time()) // accounts.TOTP_PERIOD
    step = max(current, _last_steps.get(secret, current - 1) + 1)
    while step > current + accounts.TOTP_DRIFT:  # a third code within one step: wait for the clock
        time.sleep(1)
        current = int(time.time()) // accounts.TOTP_PERIOD
    _last_steps[secret] = step
    return pyotp.TOTP(secret).at(step * accounts.TOTP_PERIOD)


# Enrolling an authenticator ------------------------------------------------------------------------


def test_a_begun_enrolment_stays_pending_until_a_code_from_its_secret_confirms_it(world: World) -> None:
    user = _person(world, "enrol-1", {"requester"})
    first = accounts.begin_totp(world.control, user)
    assert accounts.pending_totp(world.control, user) == first
    assert not accounts.has_totp(world.control, user)
    assert accounts.authenticate(world.control, user, GOOD, None).id == user  # the pending secret is not asked for
    second = accounts.begin_totp(world.control, user)
    assert second != first and accounts.pending_totp(world.control, user) == second  # a new call replaces it
    with pytest.raises(InvalidDataError, match="does not match") as refused:
        accounts.confirm_totp(world.control, user, _code(first))
    assert refused.value.problems[0].location == "code"
    row = _account_row(world, user)
    assert row.totp_secret is None and row.pending_totp_secret == second  # nothing changed
    code = _code(second)
    accounts.confirm_totp(world.control, user, f"{code[:3]} {code[3:]}")  # as some apps show it
    row = _account_row(world, user)
    assert row.totp_secret == second and row.pending_totp_secret is None
    assert accounts.has_totp(world.control, user) and accounts.pending_totp(world.control, user) is None
    with pytest.raises(AccessDeniedError, match="sign-in failed"):
        accounts.authenticate(world.control, user, GOOD, None)  # from now on a code is asked for
    assert accounts.authenticate(world.control, user, GOOD, _code(second)).id == user
    actions = [(a, o) for a, o, _ in _actions(world, user)]
    assert actions.count(("totp-enrolment-started", "success")) == 2
    assert ("totp-enrolment-failed", "failure") in actions
    enrolled = [d for a, _, d in _actions(world, user) if a == "totp-enrolled"]
    assert enrolled == [{"replaced": False}]


def test_a_replacement_authenticator_works_only_once_confirmed_and_the_old_one_then_stops(world: World) -> None:
    user = _person(world, "enrol-2", {"approver"})
    old = accounts.totp_secret(world.control, user)
    assert old
    new = accounts.begin_totp(world.control, user)
    assert accounts.authenticate(world.control, user, GOOD, _code(old)).id == user
    with pytest.raises(AccessDeniedError):
        accounts.authenticate(world.control, user, GOOD, _code(new))
    accounts.confirm_totp(world.control, user, _code(new))
    with pytest.raises(AccessDeniedError):
        accounts.authenticate(world.control, user, GOOD, _code(old))
    assert accounts.authenticate(world.control, user, GOOD, _code(new)).id == user
    assert [d for a, _, d in _actions(world, user) if a == "totp-enrolled"] == [{"replaced": True}]


def test_a_confirmation_needs_six_digits_an_enrolment_in_progress_and_an_account(world: World) -> None:
    user = _person(world, "enrol-3", {"requester"})
    for code in ("", "12345", "abcdef", "1234567"):
        with pytest.raises(InvalidDataError, match="not acceptable"):
            accounts.confirm_totp(world.control, user, code)
    with pytest.raises(InvalidStateError, match="no authenticator enrolment is in progress"):
        accounts.confirm_totp(world.control, user, "123456")
    assert not accounts.has_totp(world.control, user)
    for call in (accounts.begin_totp, accounts.has_totp, accounts.pending_totp, accounts.enrolment_required):
        with pytest.raises(NotFoundError, match="no account"):
            call(world.control, "legal_reviewer-b")  # a directory user without an account


# A privileged role without a second factor ---------------------------------------------------------


def test_a_privileged_role_granted_later_opens_nothing_but_the_enrolment(world: World) -> None:
    user = _person(world, "grant-1", {"requester"})
    kept = accounts.issue_token(world.control, user, {"requester"}, "before the grant")
    assert accounts.user(world.control, user).id == user
    _grant(world, user, "approver")
    assert accounts.enrolment_required(world.control, user)
    failures = _account_row(world, user).failed_attempts
    with pytest.raises(AccessDeniedError, match="enrol one first"):
        accounts.authenticate(world.control, user, GOOD, None)
    with pytest.raises(AccessDeniedError, match="sign-in failed"):
        accounts.authenticate(world.control, user, "not the password at all", None)  # a wrong one says nothing more
    assert _account_row(world, user).failed_attempts == failures + 1  # only the wrong password counted
    with pytest.raises(AccessDeniedError, match="enrol one first"):
        accounts.user(world.control, user)  # a session opened before the grant ends at its next page
    with pytest.raises(AccessDeniedError, match="before enrolling an authenticator"):
        accounts.issue_token(world.control, user, {"requester", "approver"}, "escalate")
    assert accounts.issue_token(world.control, user, {"requester"}, "still fine").roles == {"requester"}
    assert accounts.user_for_token(world.control, kept.secret).roles == {"requester"}
    refused = [d for a, o, d in _actions(world, user) if a == "sign-in-failed" and o == "failure"]
    assert {"reason": "totp-enrolment-required"} in refused

    assert accounts.sign_in_to_enrol(world.control, user, GOOD).id == user
    secret = accounts.begin_totp(world.control, user)
    assert accounts.enrolment_required(world.control, user)  # pending is not active
    accounts.confirm_totp(world.control, user, _code(secret))
    assert not accounts.enrolment_required(world.control, user)
    assert accounts.user(world.control, user).roles == {"requester", "approver"}
    assert accounts.authenticate(world.control, user, GOOD, _code(secret)).id == user
    assert accounts.issue_token(world.control, user, {"approver"}, "now allowed").roles == {"approver"}
    signed_in = [d for a, o, d in _actions(world, user) if a == "signed-in"]
    assert {"scope": "totp-enrolment"} in signed_in


def test_a_token_acts_without_its_privileged_roles_while_its_user_has_no_authenticator(world: World) -> None:
    user = _person(world, "grant-2", {"approver", "requester"})
    token = accounts.issue_token(world.control, user, {"approver", "requester"}, "nightly")
    headers = {"Authorization": f"Bearer {token.secret}"}
    assert world.client.get("/api/v1/me", headers=headers).json()["roles"] == ["approver", "requester"]
    with world.control.store.transaction() as conn:  # an account from before second factors were enforced
        conn.execute(update(accounts_table).where(accounts_table.c.user_id == user).values(totp_secret=None))
    accounts._token_cache.clear()
    assert world.client.get("/api/v1/me", headers=headers).json()["roles"] == ["requester"]
    r = world.client.post("/api/v1/tokens", headers=headers, json={"roles": ["approver"], "label": "more"})
    assert r.status_code == 403, r.text
    r = world.client.post("/api/v1/tokens", headers=headers, json={"roles": ["requester"], "label": "less"})
    assert r.status_code == 201, r.text
    accounts.sign_in_to_enrol(world.control, user, GOOD)
    accounts.confirm_totp(world.control, user, _code(accounts.begin_totp(world.control, user)))
    assert world.client.get("/api/v1/me", headers=headers).json()["roles"] == ["approver", "requester"]  # at once


def test_an_account_with_an_authenticator_cannot_enrol_with_its_password_alone(world: World) -> None:
    user = _person(world, "enrol-4", {"legal_reviewer"})
    before = _account_row(world, user).failed_attempts
    with pytest.raises(AccessDeniedError, match="sign-in failed") as refused:
        accounts.sign_in_to_enrol(world.control, user, GOOD)
    assert refused.value.message == accounts.SIGN_IN_FAILED  # the same as a wrong password: nothing is told
    assert _account_row(world, user).failed_attempts == before + 1
    with pytest.raises(AccessDeniedError):
        accounts.enrolling_user(world.control, user)


def test_directory_users_without_an_account_are_not_held_to_an_enrolment(world: World) -> None:
    # They never sign in; the trusted command line (or an existing token) acts for them.
    assert accounts.issue_token(world.control, "approver-b", {"approver"}, "cli").roles == {"approver"}
    assert accounts.user(world.control, "approver-b").roles == {"approver"}


# Listing tokens --------------------------------------------------------------------------------------


def test_tokens_are_listed_for_their_owner_only_with_their_state_and_never_a_secret(world: World) -> None:
    user = _person(world, "lister", {"requester", "data_steward"})
    first = accounts.issue_token(world.control, user, {"requester"}, "first job", 30)
    second = accounts.issue_token(world.control, user, {"requester", "data_steward"}, "second job", None)
    revoked = accounts.issue_token(world.control, user, {"data_steward"}, "gone", 7)
    accounts.revoke_token(world.control, user, revoked.id)
    accounts.issue_token(world.control, "requester-a", {"requester"}, "someone else's")
    listed = accounts.list_tokens(world.control, user)
    assert [t.id for t in listed] == [revoked.id, second.id, first.id]  # newest first
    by_id = {t.id: t for t in listed}
    assert by_id[first.id].label == "first job" and by_id[first.id].roles == {"requester"}
    assert by_id[first.id].active and by_id[first.id].revoked is None
    assert by_id[first.id].expires is not None and (by_id[first.id].expires - by_id[first.id].created).days == 30
    assert by_id[second.id].expires is None and by_id[second.id].roles == {"requester", "data_steward"}
    assert not by_id[revoked.id].active and by_id[revoked.id].revoked is not None
    assert by_id[first.id].created.tzinfo is not None
    fields = {f.name for f in dataclasses.fields(accounts.TokenInfo)}
    assert fields == {"id", "label", "roles", "created", "expires", "revoked", "active"}
    with pytest.raises(NotFoundError):
        accounts.list_tokens(world.control, "nobody-here")


def test_an_expired_token_is_listed_as_inactive(world: World) -> None:
    user = _person(world, "expiring", {"requester"})
    token = accounts.issue_token(world.control, user, {"requester"}, "short", 1)
    with world.control.store.transaction() as conn:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        conn.execute(update(api_tokens).where(api_tokens.c.id == token.id).values(expires_at=past))
    (listed,) = accounts.list_tokens(world.control, user)
    assert not listed.active and listed.revoked is None


# Password context and administrator reset ------------------------------------------------------------


def test_the_password_context_names_the_user_and_the_service() -> None:
    user = User("marisol", "Marisol Quintana", "agency-a", frozenset())
    assert accounts.password_context(user) == ("marisol", "Marisol Quintana", "sharewise")
    problems = accounts.password_problems("marisol walks home", accounts.password_context(user))
    assert [p.message for p in problems] == ["do not use your user name or the name of the service"]


def test_an_administrator_resets_a_password_of_their_agency_and_nothing_else_changes(world: World) -> None:
    user = _person(world, "reset-1", {"security_officer"})
    secret = accounts.totp_secret(world.control, user)
    assert secret
    token = accounts.issue_token(world.control, user, {"security_officer"}, "kept")
    for _ in range(accounts.MAX_FAILURES):
        with pytest.raises(AccessDeniedError):
            accounts.authenticate(world.control, user, "a wrong guess each time", None)
    new = "a fresh phrase handed over in person"
    accounts.reset_password(world.control, "administrator-a", user, new)
    with pytest.raises(AccessDeniedError):
        accounts.authenticate(world.control, user, GOOD, _code(secret))
    with pytest.raises(AccessDeniedError):
        accounts.authenticate(world.control, user, new, None)  # the second factor is still asked for
    assert accounts.authenticate(world.control, user, new, _code(secret)).id == user  # and the lock is lifted
    assert accounts.user_for_token(world.control, token.secret).id == user
    assert accounts.totp_secret(world.control, user) == secret
    reset = [r for r in accounts_log(world, user) if r["action"] == "password-reset-completed"]
    assert len(reset) == 1 and reset[0]["actor"] == "administrator-a" and new not in json.dumps(reset[0], default=str)


def test_a_password_reset_is_refused_to_others_and_for_weak_passwords(world: World) -> None:
    user = _person(world, "reset-2", {"requester"})
    _person(world, "reset-other", {"administrator"}, agency="agency-b")
    new = "another fresh phrase for reset"
    cases = [
        ("requester-a", user, "administrator role is needed"),  # no administrator role
        ("reset-other", user, "another agency"),  # an administrator of another agency
        ("administrator-a", "administrator-a", "their own password"),  # themselves: prove the current one instead
    ]
    for admin, target, message in cases:
        with pytest.raises(AccessDeniedError, match=message):
            accounts.reset_password(world.control, admin, target, new)
    with pytest.raises(NotFoundError, match="no account"):
        accounts.reset_password(world.control, "administrator-a", "auditor-a", new)
    with pytest.raises(InvalidDataError) as weak:
        accounts.reset_password(world.control, "administrator-a", user, "reset-2 is me")
    assert [p.message for p in weak.value.problems] == ["do not use your user name or the name of the service"]
    assert accounts.authenticate(world.control, user, GOOD, None).id == user  # unchanged
    assert "password-reset-completed" not in [a for a, _, _ in _actions(world, user)]
