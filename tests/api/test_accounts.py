"""Local accounts: SP 800-63B password rules, argon2id, throttling, TOTP for privileged roles."""

from __future__ import annotations

import pyotp
import pytest

from sharewise.domain.errors import AccessDeniedError, InvalidDataError
from sharewise.services import accounts
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
    from sqlalchemy import select

    from sharewise.store.accounts_schema import accounts as table

    with world.control.store.transaction() as conn:
        stored = conn.execute(select(table.c.password_hash).where(table.c.user_id == "requester-a")).scalar_one()
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
    code = pyotp.TOTP(new.totp_secret).now()
    assert accounts.authenticate(world.control, "approver-a", GOOD, code).id == "approver-a"


def test_repeated_failures_lock_the_account(world: World) -> None:
    accounts.create_account(world.control, "administrator-a", "data_steward-a", GOOD)
    for _ in range(accounts.MAX_FAILURES):
        with pytest.raises(AccessDeniedError):
            accounts.authenticate(world.control, "data_steward-a", "wrong password here", None)
    with pytest.raises(AccessDeniedError, match="locked"):
        accounts.authenticate(world.control, "data_steward-a", GOOD, None)
